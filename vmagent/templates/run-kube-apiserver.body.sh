for f in \
  {{APISERVER_FILES}}; do
  if [[ ! -f "${f}" ]]; then
    echo "[run-kube-apiserver] missing ${f}; waiting for its delivery" >&2
    sleep 2
    exit 1
  fi
done
args=(
  "--v=${KUBE_LOG_LEVEL}"
  "--service-cluster-ip-range=${KUBE_SERVICE_CLUSTER_IP_RANGE}"
  --goaway-chance=0
  "--external-hostname=${KUBE_API_PUBLIC_HOSTNAME}"
  "--secure-port=${KUBE_API_PORT}"
  --etcd-compaction-interval=0
  --watch-cache=false
  "--etcd-servers=${KUBE_API_ETCD_SERVERS}"
  --etcd-healthcheck-timeout=5s
  --etcd-readycheck-timeout=5s
  "--service-account-issuer=${KUBE_SERVICE_ACCOUNT_ISSUER}"
  "--service-account-jwks-uri=https://${KUBE_API_PUBLIC_HOSTNAME}/.well-known/openid-configuration"
  --service-account-key-file={{SA_PUB}}
  --service-account-signing-key-file={{SA_KEY}}
  --client-ca-file={{CA}}
  --etcd-certfile={{APISERVER_CLIENT_CRT}}
  --etcd-keyfile={{APISERVER_CLIENT_KEY}}
  --etcd-cafile={{CA}}
  --tls-cert-file={{APISERVER_SERVER_CRT}}
  --tls-private-key-file={{APISERVER_SERVER_KEY}}
  --tls-min-version=VersionTLS13
  --tls-cipher-suites=TLS_AES_256_GCM_SHA384
  --kubelet-client-certificate={{APISERVER_CLIENT_CRT}}
  --kubelet-client-key={{APISERVER_CLIENT_KEY}}
  --kubelet-certificate-authority={{CA}}
  --proxy-client-cert-file={{FRONT_PROXY_CRT}}
  --proxy-client-key-file={{FRONT_PROXY_KEY}}
  --requestheader-allowed-names=front-proxy-client
  --requestheader-client-ca-file={{CA}}
  --requestheader-extra-headers-prefix=X-Remote-Extra-
  --requestheader-group-headers=X-Remote-Group
  --requestheader-uid-headers=X-Remote-Uid
  --requestheader-username-headers=X-Remote-User
  --kubelet-preferred-address-types=InternalIP,InternalDNS
  --anonymous-auth=false
  "--oidc-issuer-url=${OIDC_ISSUER}"
  "--oidc-client-id=${CLUSTER_ID}"
  --oidc-username-claim=email
  --oidc-username-prefix=
  --oidc-groups-claim=groups
  --oidc-groups-prefix=
  "--oidc-signing-algs=${OIDC_SIGNING_ALGS}"
  --authorization-mode=Node,RBAC
  --enable-admission-plugins=NodeRestriction,NamespaceExists,OwnerReferencesPermissionEnforcement
  --allow-privileged=true
)
if [[ -n "${OIDC_CA_FILE:-}" && -f "${OIDC_CA_FILE}" ]]; then
  args+=("--oidc-ca-file=${OIDC_CA_FILE}")
fi
exec /usr/bin/kube-apiserver "${args[@]}"
