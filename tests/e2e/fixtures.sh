# Fixtures shared by tests/e2e/run (nspawn) and tests/vm/run (QEMU): sourced, not run.
# Needs: $top, $work, $debs (the cached Debian debs). Writes:
#   $work/pinned.json   the pinned knc amd64 manifest (real containerd/runc/CNI, stand-ins, vmagent)
#   $work/mirror/       the deps mirror layout vmconfig/artifacts/<key>/<version>/<basename(url)>
#   $work/bb-oci.tar    a busybox OCI image built here, for `ctr import`

e2e_artifacts() {
  local a x p b t ctd_version u rel key ver url type ext dest
  echo "== artifacts: Debian's containerd/runc/CNI in upstream layouts, stand-ins, real debs"
  a=$work/artifacts; x=$work/x
  mkdir -p "$a" "$x"
  for p in containerd runc containernetworking-plugins; do dpkg-deb -x "$debs/${p}_"*.deb "$x"; done
  mkdir -p "$work/ctd/bin"
  cp "$x/usr/bin/containerd" "$x/usr/bin/containerd-shim-runc-v2" "$x/usr/bin/ctr" "$work/ctd/bin/"
  tar -C "$work/ctd" -czf "$a/containerd.tar.gz" bin
  cp "$x/usr/sbin/runc" "$a/runc"
  tar -C "$x/usr/lib/cni" -czf "$a/cni-plugins.tar.gz" .
  standin() {
    printf '#!/bin/sh\necho "%s: test stand-in, not the real program; args: $*"\nexec sleep infinity\n' "$1" > "$2"
    chmod 0755 "$2"
  }
  for b in kubelet kube-apiserver kube-controller-manager kube-scheduler kubectl zot; do standin "$b" "$a/$b"; done
  for t in crictl netsy nstance-agent; do
    mkdir -p "$work/t-$t"; standin "$t" "$work/t-$t/$t"
    tar -C "$work/t-$t" -czf "$a/$t.tar.gz" "$t"
  done
  cp "$debs/uidmap_"*.deb "$a/uidmap.deb"
  cp "$debs/libsubid5_"*.deb "$a/libsubid5.deb"
  ctd_version=$(dpkg-deb -f "$debs/containerd_"*.deb Version | sed 's/~.*//')
  u=https://artifacts.podplane.invalid
  jq -n --arg cv "$ctd_version" --arg u "$u" '{vmconfig: {version: "e2e", kind: "knc",
    os: {name: "debian-13", arch: "amd64"},
    images: [{image: "registry.k8s.io/pause:3.10.2", digest: "sha256:412c4a7219cb8a299a37337f3d87810c5340095322e15594a1637785adad0f17", size: 318043}],
    dependencies: {
      "cni-plugins": {version: "1.1.1", type: "tar.gz", url: "\($u)/cni-plugins-linux-amd64-v1.1.1.tgz", digest: "sha256:", size: 0},
      containerd: {version: $cv, type: "tar.gz", url: "\($u)/containerd-\($cv)-linux-amd64.tar.gz", digest: "sha256:", size: 0},
      crictl: {version: "1.36.0", type: "tar.gz", url: "\($u)/crictl-v1.36.0-linux-amd64.tar.gz", digest: "sha256:", size: 0},
      "kube-apiserver": {version: "1.37.0", type: "binary", url: "\($u)/kube-apiserver", digest: "sha256:", size: 0},
      "kube-controller-manager": {version: "1.37.0", type: "binary", url: "\($u)/kube-controller-manager", digest: "sha256:", size: 0},
      "kube-scheduler": {version: "1.37.0", type: "binary", url: "\($u)/kube-scheduler", digest: "sha256:", size: 0},
      kubectl: {version: "1.37.0", type: "binary", url: "\($u)/kubectl", digest: "sha256:", size: 0},
      kubelet: {version: "1.37.0", type: "binary", url: "\($u)/kubelet", digest: "sha256:", size: 0},
      libsubid5: {version: "4.17.4-2", type: "deb", url: "\($u)/libsubid5_4.17.4-2_amd64.deb", digest: "sha256:", size: 0},
      netsy: {version: "1.1.0", type: "tar.gz", url: "\($u)/netsy_1.1.0_linux_amd64.tar.gz", digest: "sha512:", size: 0},
      "nstance-agent": {version: "1.2.3", type: "tar.gz", url: "\($u)/nstance-agent_1.2.3_linux_amd64.tar.gz", digest: "sha512:", size: 0},
      runc: {version: "1.1.15", type: "binary", url: "\($u)/runc.amd64", digest: "sha256:", size: 0},
      uidmap: {version: "4.17.4-2", type: "deb", url: "\($u)/uidmap_4.17.4-2_amd64.deb", digest: "sha256:", size: 0},
      zot: {version: "2.1.17", type: "binary", url: "\($u)/zot-linux-amd64-minimal", digest: "sha256:", size: 0}
    }}}' > "$work/template.json"
  packaging/manifest "$work/template.json" "$a" > "$work/pinned.json"
  # vmagent itself, as a release: userdata downloads this tarball by its pinned digest.
  packaging/release e2e-1 --kinds knc --base-url https://artifacts.podplane.invalid/vmagent --out "$work/release" >/dev/null
  rel=$(ls "$work/release"/vmagent_e2e-1_knc_debian-13_*.json)
  jq --slurpfile r "$rel" '.vmconfig.dependencies.vmagent = $r[0].vmconfig.dependencies.vmagent' \
    "$work/pinned.json" > "$work/pinned.tmp" && mv "$work/pinned.tmp" "$work/pinned.json"
  cp "$(ls "$work/release"/vmagent_e2e-1_knc_debian-13_*.tar.gz)" "$a/vmagent.tar.gz"
  # The mirror layout: vmconfig/artifacts/<key>/<version>/<basename(url)>.
  mkdir -p "$work/mirror"
  jq -r '.vmconfig.dependencies | to_entries[] | "\(.key) \(.value.version) \(.value.url) \(.value.type)"' "$work/pinned.json" |
  while read -r key ver url type; do
    case "$type" in deb) ext=.deb ;; tar.gz) ext=.tar.gz ;; *) ext= ;; esac
    dest=$work/mirror/vmconfig/artifacts/$key/$ver/${url##*/}
    mkdir -p "$(dirname "$dest")"; cp "$a/$key$ext" "$dest"
  done
}

e2e_busybox_image() {
  local img diffid ld ls cd_ cs md ms l
  echo "== busybox OCI image for containerd"
  img=$work/img; mkdir -p "$img/layer/bin" "$img/blobs/sha256"
  cp /bin/busybox "$img/layer/bin/busybox"
  for l in sh echo cat id; do ln -s busybox "$img/layer/bin/$l"; done
  tar -C "$img/layer" -cf "$img/layer.tar" bin
  diffid=$(sha256sum "$img/layer.tar" | cut -d' ' -f1)
  gzip -n -c "$img/layer.tar" > "$img/layer.tar.gz"
  ld=$(sha256sum "$img/layer.tar.gz" | cut -d' ' -f1); ls=$(stat -c %s "$img/layer.tar.gz")
  cp "$img/layer.tar.gz" "$img/blobs/sha256/$ld"
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diffid" > "$img/config.json"
  cd_=$(sha256sum "$img/config.json" | cut -d' ' -f1); cs=$(stat -c %s "$img/config.json")
  cp "$img/config.json" "$img/blobs/sha256/$cd_"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' "$cd_" "$cs" "$ld" "$ls" > "$img/manifest.json"
  md=$(sha256sum "$img/manifest.json" | cut -d' ' -f1); ms=$(stat -c %s "$img/manifest.json")
  cp "$img/manifest.json" "$img/blobs/sha256/$md"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/bb:1","org.opencontainers.image.ref.name":"1"}}]}' "$md" "$ms" > "$img/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$img/oci-layout"
  tar -C "$img" -cf "$work/bb-oci.tar" oci-layout index.json blobs
}
