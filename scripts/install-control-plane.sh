#!/usr/bin/env bash
# Provides etcd + kube-apiserver 1.20.2 for the e2e tests (the way controller-runtime's envtest
# does), using only Debian's package registry: etcd comes from the etcd-server package, and
# kube-apiserver is built from Debian's kubernetes source package, since no Debian binary package
# ships it and nothing may be downloaded from elsewhere.
#
# Idempotent and non-interactive. The first run takes several minutes (mostly the Go build); later
# runs find the cached binaries and return at once. The last line on stdout is the directory to use
# as KUBEBUILDER_ASSETS, so this works:
#   export KUBEBUILDER_ASSETS="$(scripts/install-control-plane.sh | tail -n 1)"
set -euo pipefail

readonly K8S_VERSION=1.20.2
readonly ASSETS="${RPA_ACCESS_ASSETS:-${HOME:?HOME must be set}/.cache/rpa-access/k8s-${K8S_VERSION}}"
readonly BIN="${ASSETS}/bin"
# The build tree stays outside the repository and is deleted after a successful build.
readonly BUILD="${ASSETS}/build"
readonly DEB_SRC_LIST_PREFIX=/etc/apt/sources.list.d/rpa-access-deb-src
readonly REFLECT2_DEBIAN=/usr/share/gocode/src/github.com/modern-go/reflect2
readonly PACKAGES=(golang-go etcd-server rsync make golang-github-modern-go-reflect2-dev openssl dpkg-dev)

export DEBIAN_FRONTEND=noninteractive

log() { echo "[install-control-plane] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run a command as root: CI and these machines are root, a developer laptop may need sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

have_binaries() {
  [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]
}

# Ends the script when usable binaries already exist, printing where they are.
exit_if_installed() {
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_binaries "${KUBEBUILDER_ASSETS}"; then
    log "KUBEBUILDER_ASSETS already holds etcd and kube-apiserver; nothing to do"
    echo "${KUBEBUILDER_ASSETS}"
    exit 0
  fi
  if have_binaries "${BIN}" && "${BIN}/kube-apiserver" --version >/dev/null 2>&1; then
    log "cached binaries found in ${BIN} ($("${BIN}/kube-apiserver" --version)); nothing to do"
    echo "${BIN}"
    exit 0
  fi
}

# apt-get source needs deb-src entries; Debian images ship deb lines only. Mirror whatever deb
# sources the machine has (deb822 .sources files or a one-line sources.list) as deb-src.
enable_deb_src() {
  if grep -rqsE '^(deb-src |Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "deb-src already enabled"
    return
  fi
  local sources=(/etc/apt/sources.list.d/*.sources)
  if [ -e "${sources[0]}" ]; then
    # One stanza per repository; the blank line keeps stanzas of different files apart.
    for f in "${sources[@]}"; do
      sed -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' "${f}"
      echo
    done | as_root tee "${DEB_SRC_LIST_PREFIX}.sources" >/dev/null
  elif [ -f /etc/apt/sources.list ]; then
    sed -nE 's/^deb[[:space:]]+/deb-src /p' /etc/apt/sources.list \
      | as_root tee "${DEB_SRC_LIST_PREFIX}.list" >/dev/null
  else
    die "no apt sources found to mirror as deb-src"
  fi
  log "enabled deb-src entries in ${DEB_SRC_LIST_PREFIX}.*"
}

install_packages() {
  log "apt-get update"
  as_root apt-get update -qq
  log "apt-get install ${PACKAGES[*]}"
  as_root apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

# Prints the path of the unpacked kubernetes source tree, fetching it when not already there
# (a previous run may have failed after fetching).
fetch_source() {
  mkdir -p "${BUILD}"
  local tree
  tree=$(find_source_tree)
  if [ -z "${tree}" ]; then
    log "apt-get source kubernetes (Debian's ${K8S_VERSION} source package)"
    (cd "${BUILD}" && apt-get source -qq kubernetes >&2)
    tree=$(find_source_tree)
  fi
  [ -n "${tree}" ] || die "apt-get source kubernetes produced no source tree in ${BUILD}"
  # Debian names it e.g. kubernetes-1.20.5+really1.20.2; refuse a different upstream version.
  case "${tree}" in
    *"${K8S_VERSION}") ;;
    *) die "Debian's kubernetes source is $(basename "${tree}"), not ${K8S_VERSION}" ;;
  esac
  echo "${tree}"
}

find_source_tree() {
  find "${BUILD}" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1
}

# The vendored reflect2 1.0.1 reads runtime internals that moved in Go 1.18 and crashes at
# start-up; Debian's packaged copy is fixed and API-compatible.
replace_reflect2() {
  local tree="$1"
  [ -d "${REFLECT2_DEBIAN}" ] || die "missing ${REFLECT2_DEBIAN} (package golang-github-modern-go-reflect2-dev)"
  log "replacing vendored modern-go/reflect2 with Debian's copy"
  rsync -a --delete --exclude '*_test.go' "${REFLECT2_DEBIAN}/" "${tree}/vendor/github.com/modern-go/reflect2/"
}

# Without a .git directory, hack/lib/version.sh would stamp v0.0.0-master (clients read the
# server's major/minor); give it the real version. The commit id stays the one in Debian's source.
write_version_file() {
  local file="$1" major minor
  IFS=. read -r major minor _ <<<"${K8S_VERSION}"
  cat >"${file}" <<EOF
KUBE_GIT_VERSION='v${K8S_VERSION}'
KUBE_GIT_MAJOR='${major}'
KUBE_GIT_MINOR='${minor}'
EOF
}

build_apiserver() {
  local tree="$1"
  # The 1.20 build runs in GOPATH mode and expects the tree at k8s.io/kubernetes.
  mkdir -p "${tree}/.go/src/k8s.io"
  ln -sfn "${tree}" "${tree}/.go/src/k8s.io/kubernetes"
  write_version_file "${tree}/.version-env"
  log "building kube-apiserver with $(go version) (about 5 minutes on 2 cores)"
  (
    cd "${tree}/.go/src/k8s.io/kubernetes"
    GOPATH="${tree}/.go" CGO_ENABLED=0 KUBE_GIT_VERSION_FILE="${tree}/.version-env" \
      GOFLAGS= GO111MODULE=off GOCACHE="${BUILD}/gocache" \
      make WHAT=cmd/kube-apiserver >&2
  )
}

# Copy then rename, so an interrupted run never leaves a truncated binary that looks installed.
install_into_bin() {
  install -m 0755 "$1" "${BIN}/$2.tmp"
  mv -f "${BIN}/$2.tmp" "${BIN}/$2"
}

install_binaries() {
  local tree="$1" built
  built=$(find "${tree}/_output" -type f -name kube-apiserver -perm -u+x | head -n 1)
  [ -n "${built}" ] || die "the build produced no kube-apiserver under ${tree}/_output"
  mkdir -p "${BIN}"
  # Copies, not symlinks: the cache must survive the build tree's removal and keep etcd's version
  # pinned even if the etcd-server package changes.
  install_into_bin /usr/bin/etcd etcd
  install_into_bin "${built}" kube-apiserver
  log "installed $("${BIN}/kube-apiserver" --version) and etcd $("${BIN}/etcd" --version | head -n 1)"
}

main() {
  local start=${SECONDS}
  exit_if_installed
  mkdir -p "${ASSETS}"
  # Two concurrent runs (e.g. parallel CI jobs on one machine) must not build into the same tree.
  exec 9>"${ASSETS}/.lock"
  flock 9
  exit_if_installed

  enable_deb_src
  install_packages
  local tree
  tree=$(fetch_source)
  replace_reflect2 "${tree}"
  build_apiserver "${tree}"
  install_binaries "${tree}"

  log "removing the build tree ${BUILD}"
  rm -rf "${BUILD}"
  log "done in $((SECONDS - start)) s; use KUBEBUILDER_ASSETS=${BIN}"
  echo "${BIN}"
}

main "$@"
