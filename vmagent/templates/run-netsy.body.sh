if [[ -n "${NETSY_REGION}" ]]; then
  export AWS_DEFAULT_REGION="${NETSY_REGION}"
fi
for v in {{AWS_VARS}}; do
  if [[ -n "${!v:-}" ]]; then
    export "${v}"
  fi
done
exec /opt/netsy/bin/netsy
