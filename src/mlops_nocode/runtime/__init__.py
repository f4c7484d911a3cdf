"""Runtime: the Runner, the step protocol, the artifact store and the CPU throttler."""
