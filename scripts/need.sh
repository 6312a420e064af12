# Sourced by scripts/demo, scripts/image, scripts/image-check and .ci/run: make sure Debian
# packages are installed. As root it installs what is missing with apt-get and says so; as
# another user it prints the exact command to run and stops, so nothing asks for a password.
#   need_packages "WHAT THEY ARE FOR" PACKAGE...

need_packages() {
  local why=$1 pkg
  shift
  local missing=()
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "This script installs its tools with apt-get (Debian, Ubuntu) and finds no dpkg here." >&2
    echo "Install the equivalent of these packages ($why) and run $0 again: $*" >&2
    exit 1
  fi
  for pkg in "$@"; do
    # `dpkg -s` also succeeds for a removed package whose config files remain; check the state.
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0 needs these Debian packages ($why), which are not installed: ${missing[*]}" >&2
    echo "Install them as root, then run $0 again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "==> installing ${missing[*]} ($why) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists at all; refresh them once per script.
  if [ -z "${PKGR_APT_UPDATED:-}" ]; then
    apt-get update -qq
    PKGR_APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
