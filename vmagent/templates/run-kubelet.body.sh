labels=""
for label in \
  "node.kubernetes.io/instance-type=${PROVIDER_INSTANCE_TYPE:-}" \
  "topology.kubernetes.io/region=${PROVIDER_REGION:-}" \
  "topology.kubernetes.io/zone=${PROVIDER_ZONE:-}"; do
  if [[ -n "${label#*=}" ]]; then
    labels="${labels:+${labels},}${label}"
  fi
done
node_ip="${INSTANCE_IPV4:-}"
if [[ -n "${INSTANCE_IPV6:-}" ]]; then
  node_ip="${node_ip:+${node_ip},}${INSTANCE_IPV6}"
fi
if [[ -z "${node_ip}" ]]; then
  echo "[run-kubelet] INSTANCE_IPV4 and INSTANCE_IPV6 are both empty in {{KUBELET_ENV}}" >&2
  sleep 2
  exit 1
fi
args=(
  --config={{KUBELET_YAML}}
  --kubeconfig={{KUBELET_KUBECONFIG}}
  "--node-ip=${node_ip}"
  "--hostname-override=${INSTANCE_ID:-}"
)
if [[ -n "${labels}" ]]; then
  args+=("--node-labels=${labels}")
fi
if [[ -n "${INSTANCE_PROVIDER_ID:-}" ]]; then
  args+=("--provider-id=${INSTANCE_PROVIDER_ID}")
fi
exec /usr/bin/kubelet "${args[@]}"
