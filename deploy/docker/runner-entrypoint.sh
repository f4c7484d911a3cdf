#!/bin/sh
# The runner image's entrypoint.
# - With arguments: `mlops execute ARGS` (K3s runs the image with its own command; `docker run IMAGE PLAN`).
# - Without arguments and with MLOPS_PLAN_B64 set (RunPod, Vast.ai: the plan travels in the environment,
#   so the Runner starts even where the provider does not send a start command): the plan is decoded and
#   the deployment's steps run, `mlops execute PLAN --deployment $MLOPS_DEPLOYMENT --report-to
#   $MLOPS_REPORT_TO` (the run token is read from MLOPS_RUN_TOKEN by mlops itself). With MLOPS_HOLD=1 the
#   container then waits instead of exiting (RunPod restarts a pod whose command ends, which would run
#   the plan again); the teardown removes it.
# Values are only ever expanded inside double quotes: none is parsed as shell code.
set -eu
if [ "$#" -gt 0 ] || [ -z "${MLOPS_PLAN_B64:-}" ]; then
  exec mlops execute "$@"
fi
plan="${TMPDIR:-/tmp}/mlops-plan.json"
printf '%s' "$MLOPS_PLAN_B64" | base64 -d > "$plan"
unset MLOPS_PLAN_B64
code=0
mlops execute "$plan" --deployment "${MLOPS_DEPLOYMENT:?MLOPS_DEPLOYMENT is not set}" \
  --report-to "${MLOPS_REPORT_TO:?MLOPS_REPORT_TO is not set}" || code=$?
echo "mlops execute ended with status $code" >&2
if [ "${MLOPS_HOLD:-0}" = "1" ]; then
  exec sleep infinity
fi
exit "$code"
