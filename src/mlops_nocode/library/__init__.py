"""Built-in playbook implementations: scikit-learn datasets, preprocessing, training, evaluation and more.

Each public step function is keyword-only and follows the Python step contract described in
docs/LIBRARY.md: parameters and input paths come in as keyword arguments, `ctx` gives the output
directory, and the function returns a dict mapping each output port to a path or a JSON value.
"""
