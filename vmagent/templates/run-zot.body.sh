if [[ -z "${REGISTRY_BUCKET}" ]]; then
  echo "[run-zot] REGISTRY_BUCKET is empty; not starting" >&2
  exit 1
fi
for f in {{SERVER_CRT}} {{SERVER_KEY}} {{CONFIG}}; do
  if [[ ! -f "$f" ]]; then
    echo "[run-zot] $f is missing; not starting" >&2
    exit 1
  fi
done
if [[ -n "${REGISTRY_ASSUME_ROLE}" ]]; then
  export AWS_SDK_LOAD_CONFIG=1 AWS_ROLE_ARN="${REGISTRY_ASSUME_ROLE}" AWS_ROLE_SESSION_NAME="${INSTANCE_ID}-zot"
elif [[ -n "${REGISTRY_ACCESS_KEY_ID}" || -n "${REGISTRY_SECRET_ACCESS_KEY}" ]]; then
  export AWS_ACCESS_KEY_ID="${REGISTRY_ACCESS_KEY_ID}" AWS_SECRET_ACCESS_KEY="${REGISTRY_SECRET_ACCESS_KEY}"
fi
exec /usr/bin/zot serve {{CONFIG}}
