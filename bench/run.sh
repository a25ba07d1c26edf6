#!/usr/bin/env bash
# mirror vs skopeo, side by side, offline: two (or more) CNCF distribution registries on
# 127.0.0.1, a deterministic multi-arch workload, six scenarios (podman too, where installed),
# one table. See BENCHMARKS.md.
#
#   bench/run.sh [--repos N] [--scale F] [--big] [--jobs N] [--archive-repos N]
#                [--scenarios "1 2 3 4 5 6"] [--repeat N] [--work DIR] [--keep] [--no-build]
set -euo pipefail

REPOS=12 SCALE=1 BIG="" JOBS="" ARCHIVE_REPOS=4 SCENARIOS="1 2 3 4 5 6" REPEAT=4 WORK="" KEEP=0 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --repos) REPOS="$2"; shift 2 ;;
    --scale) SCALE="$2"; shift 2 ;;
    --big) BIG="--big"; shift ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --archive-repos) ARCHIVE_REPOS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
for tool in /usr/bin/docker-registry /usr/bin/skopeo /usr/bin/time curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install docker-registry skopeo time curl)" >&2; exit 2; }
done
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --release --quiet --bin mirror --example workload)
fi
# podman is optional: with it, scenarios 5 and 6 also run the `podman manifest` script.
PODMAN=0
command -v podman >/dev/null && PODMAN=1
MIRROR="$ROOT/target/release/mirror"
WL="$ROOT/target/release/examples/workload"
[ -z "$WORK" ] && WORK=$(mktemp -d /tmp/mirror-bench.XXXXXX)
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

declare -A REG_PID REG_ADDR REG_DIR
cleanup() {
  for name in "${!REG_PID[@]}"; do kill "${REG_PID[$name]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }

# start_registry NAME [PORT]: a fresh registry on a free 127.0.0.1 port (or PORT) with its own,
# empty storage.
start_registry() {
  local name=$1 port=${2:-} dir
  [ -n "$port" ] || port=$("$WL" free-port)
  dir="$WORK/reg-$name"
  rm -rf "$dir"; mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: mirror-bench-secret
health:
  storagedriver:
    enabled: false
EOF
  /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  REG_PID[$name]=$!
  REG_ADDR[$name]="127.0.0.1:$port"
  REG_DIR[$name]="$dir"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0
    sleep 0.1
  done
  log "registry $name did not start:"; cat "$dir/log" >&2; exit 1
}

stop_registry() {
  kill "${REG_PID[$1]}" 2>/dev/null || true
  wait "${REG_PID[$1]}" 2>/dev/null || true
  unset "REG_PID[$1]"
}

# Bytes of blobs stored by registry NAME (what landed on its disk).
stored_bytes() {
  find "${REG_DIR[$1]}/data" -path '*/blobs/sha256/*' -name data -type f -printf '%s\n' 2>/dev/null |
    awk '{s+=$1} END {printf "%.0f\n", s}'
}

# Bytes registry NAME served as blob GET bodies (from its own request log).
served_bytes() {
  awk '/msg="response completed"/ && /http.request.method=GET/ && /\/blobs\/sha256:/ {
         if (match($0, /http.response.written=[0-9]+/)) s += substr($0, RSTART + 22, RLENGTH - 22)
       } END {printf "%.0f\n", s}' "${REG_DIR[$1]}/log"
}

# measure KEY SRC DST cmd...: runs cmd under /usr/bin/time -v; records wall, peak RSS, bytes.
declare -A WALL RSS CPU REGCPU SERVED STORED REPORTED
# CPU ticks (user + system) registry NAME has used so far.
reg_ticks() { awk '{print $14 + $15}' "/proc/${REG_PID[$1]}/stat"; }
measure() {
  local key=$1 src=$2 dst=$3; shift 3
  local s0 d0 r0 t0 t1 tf="$WORK/time-$key.txt"
  # Dirty pages left by what ran before (the workload, the other tool's run) are written back
  # now, not during this command, where they would slow whichever tool comes next.
  sync
  s0=$(served_bytes "$src"); d0=$(stored_bytes "$dst"); r0=$(reg_ticks "$dst")
  t0=$(date +%s.%N)
  if ! /usr/bin/time -v -o "$tf" "$@" >"$WORK/out-$key.txt" 2>"$WORK/err-$key.txt"; then
    log "FAILED: $key ($*)"; tail -20 "$WORK/err-$key.txt" >&2; exit 1
  fi
  t1=$(date +%s.%N)
  WALL[$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}')
  RSS[$key]=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$tf")
  # user + system CPU seconds of the command and every child it waited for (each skopeo).
  CPU[$key]=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$tf")
  REGCPU[$key]=$(awk -v a="$r0" -v b="$(reg_ticks "$dst")" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b-a)/hz}')
  SERVED[$key]=$(( $(served_bytes "$src") - s0 ))
  STORED[$key]=$(( $(stored_bytes "$dst") - d0 ))
  if [ -s "$WORK/out-$key.txt" ] && jq -e .summary "$WORK/out-$key.txt" >/dev/null 2>&1; then
    REPORTED[$key]=$(jq -r '.summary | "\(.bytes_fetched)/\(.bytes_pushed)"' "$WORK/out-$key.txt")
  else
    REPORTED[$key]="-"
  fi
  log "  $key: ${WALL[$key]} s, ${CPU[$key]} CPU s, ${RSS[$key]} MB peak RSS"
}

# mirrorfile NAME TARGET LIST [PLATFORMS]: writes $WORK/NAME/mirrorfile.toml.
mirrorfile() {
  local name=$1 target=$2 list=$3 platforms=${4:-}
  mkdir -p "$WORK/$name"
  {
    printf '[target]\nregistry = "%s"\n\n' "$target"
    printf '[registry."%s"]\ntls = "http"\n\n[registry."%s"]\ntls = "http"\n\n' "${REG_ADDR[src]}" "$target"
    [ -n "$platforms" ] && printf '[defaults]\nplatforms = %s\n\n' "$platforms"
    printf '[cache]\ndir = "%s"\n\n[[images]]\nlist = "%s"\n' "$WORK/cache-$name" "$list"
  } >"$WORK/$name/mirrorfile.toml"
}

run_mirror() { # KEY SRC DST MIRRORFILE_DIR
  local key=$1 src=$2 dst=$3 dir=$4
  measure "$key" "$src" "$dst" "$MIRROR" -f "$dir/mirrorfile.toml" apply --json ${JOBS:+--jobs "$JOBS"}
}

run_skopeo() { # KEY SRC DST LIST
  local key=$1 src=$2 dst=$3 list=$4
  measure "$key" "$src" "$dst" bash -c '
    set -e
    while read -r ref; do
      path=${ref#*/}
      skopeo copy --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
        "docker://$ref" "docker://$0/$path"
    done <"$1"' "${REG_ADDR[$dst]}" "$list"
}

mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b/1000000}'; }

# restart_empty NAME...: the same registries again, on the same ports, with empty storage.
restart_empty() {
  local name port
  for name in "$@"; do
    port=${REG_ADDR[$name]##*:}
    stop_registry "$name"
    start_registry "$name" "$port"
  done
}

# cold_runs KEY MIRROR_DIR CACHE LIST DST_M DST_S: the cold copy REPEAT times. Each tool's
# target registry is emptied right before that tool's own run (mirror's cache and lock too), so
# both start from the same state: on this VM, memory freed a moment ago is cheaper to write into
# than memory freed long ago (BENCHMARKS.md, "Fresh pages"), and emptying both targets before a
# pair favoured whichever tool went first. mirror goes first in odd runs and skopeo in even ones.
# The row is the mean over the runs (wall and CPU; peak RSS is the largest; bytes are the same
# every run), and every run is listed in a note.
cold_runs() {
  local key=$1 dir=$2 cache=$3 list=$4 dm=$5 ds=$6 i t
  cold_mirror() {
    if [ "$i" -gt 1 ]; then restart_empty "$dm"; fi
    rm -rf "$cache" "$dir/mirrorfile.lock"
    run_mirror "m$key.$i" src "$dm" "$dir"
  }
  cold_skopeo() {
    if [ "$i" -gt 1 ]; then restart_empty "$ds"; fi
    run_skopeo "s$key.$i" src "$ds" "$list"
  }
  for i in $(seq "$REPEAT"); do
    if [ $(( i % 2 )) = 1 ]; then cold_mirror; cold_skopeo; else cold_skopeo; cold_mirror; fi
  done
  COLD_NOTE="mean of $REPEAT runs; mirror / skopeo s (ratio) per run, the tool that went first in []:"
  for t in m s; do
    SERVED[$t$key]=${SERVED[$t$key.1]}; STORED[$t$key]=${STORED[$t$key.1]}
    REPORTED[$t$key]=${REPORTED[$t$key.1]}
    local walls="" cpus="" regs="" rss=0
    for i in $(seq "$REPEAT"); do
      walls+="${WALL[$t$key.$i]} "; cpus+="${CPU[$t$key.$i]} "; regs+="${REGCPU[$t$key.$i]} "
      [ "${RSS[$t$key.$i]}" -gt "$rss" ] && rss=${RSS[$t$key.$i]}
    done
    WALL[$t$key]=$(mean $walls); CPU[$t$key]=$(mean $cpus); REGCPU[$t$key]=$(mean $regs)
    RSS[$t$key]=$rss
  done
  for i in $(seq "$REPEAT"); do
    local first=mirror
    [ $(( i % 2 )) = 0 ] && first=skopeo
    COLD_NOTE+=" ${WALL[m$key.$i]} / ${WALL[s$key.$i]} ($(awk -v a="${WALL[m$key.$i]}" -v b="${WALL[s$key.$i]}" 'BEGIN {printf "%.2f", a/b}') [$first])"
  done
}

mean() { printf '%s\n' "$@" | awk '{s += $1; n++} END {printf "%.2f", s / n}'; }

# ---------------------------------------------------------------------------------------------
log "work dir: $WORK"
log "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
SHA=$(openssl speed -evp sha256 -bytes 1048576 -seconds 1 2>/dev/null | awk '/^sha256/ {printf "%.0f", $2/1000}')
DISK=$(dd if=/dev/zero of="$WORK/dd.tmp" bs=1M count=256 conv=fdatasync 2>&1 | awk -F', ' '/copied/ {print $NF}')
rm -f "$WORK/dd.tmp"
log "sha256 (openssl, 1 MiB blocks, one core): ${SHA} MB/s; disk write with fdatasync: $DISK"
log "versions: $(skopeo --version); $(/usr/bin/docker-registry --version 2>&1 | head -1)"

log "generating workload (repos=$REPOS scale=$SCALE ${BIG:-})..."
t0=$(date +%s)
GEN=$("$WL" generate --out "$WORK/layout" --repos "$REPOS" --scale "$SCALE" $BIG)
log "  $GEN ($(( $(date +%s) - t0 )) s)"
UNIQUE=$(sed -n 's/.*unique_bytes=\([0-9]*\).*/\1/p' <<<"$GEN")
BUMP_LAYERS=$(sed -n 's/.*bump_layer_bytes=\([0-9]*\).*/\1/p' <<<"$GEN")
BUMP_BLOBS=$(sed -n 's/.*bump_blob_bytes=\([0-9]*\).*/\1/p' <<<"$GEN")

start_registry src
t0=$(date +%s)
"$WL" push --dir "$WORK/layout" --registry "${REG_ADDR[src]}" --bump
log "  source registry ${REG_ADDR[src]} filled ($(( $(date +%s) - t0 )) s)"
jq -r --arg h "${REG_ADDR[src]}" '.images[] | "\($h)/\(.repository):\(.tag)"' "$WORK/layout/workload.json" >"$WORK/images.txt"
BUMP_REF=$(jq -r --arg h "${REG_ADDR[src]}" '.bump | "\($h)/\(.repository):\(.tag)"' "$WORK/layout/workload.json")
FIRST_REF=$(head -1 "$WORK/images.txt")
{ echo "$BUMP_REF"; tail -n +2 "$WORK/images.txt"; } >"$WORK/images-bump.txt"

declare -a ROWS NOTES
row() { # SCENARIO MIRROR_KEY SKOPEO_KEY NOTE
  ROWS+=("$1|$2|$3"); [ -n "${4:-}" ] && NOTES+=("$1: $4")
  return 0
}
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

if has 1 || has 2 || has 3; then
  start_registry dst-m; start_registry dst-s
  mirrorfile main "${REG_ADDR[dst-m]}" "$WORK/images.txt"
  mirrorfile bump "${REG_ADDR[dst-m]}" "$WORK/images-bump.txt"
  sed -i "s#cache-bump#cache-main#" "$WORK/bump/mirrorfile.toml"
  log "1. cold copy of everything ($REPOS images x 3 platforms), $REPEAT runs"
  cold_runs 1 "$WORK/main" "$WORK/cache-main" "$WORK/images.txt" dst-m dst-s
  row "1 cold copy" m1 s1 "$COLD_NOTE"
  if has 2; then
    log "2. rerun, nothing changed"
    run_mirror m2 src dst-m "$WORK/main"
    run_skopeo s2 src dst-s "$WORK/images.txt"
    row "2 rerun, no change" m2 s2
  fi
  if has 3; then
    log "3. one tag bumped (${FIRST_REF##*/} -> ${BUMP_REF##*/}), one new layer per platform"
    run_mirror m3 src dst-m "$WORK/bump"
    run_skopeo s3 src dst-s "$WORK/images-bump.txt"
    row "3 one tag bumped" m3 s3 "new blobs: $(mb "$BUMP_LAYERS") MB of layers + $(( BUMP_BLOBS - BUMP_LAYERS )) B of configs = $BUMP_BLOBS B"
  fi
  stop_registry dst-m; stop_registry dst-s
fi

if has 4; then
  start_registry dst-m4; start_registry dst-s4
  mirrorfile subset "${REG_ADDR[dst-m4]}" "$WORK/images.txt" '["linux/amd64", "linux/arm64"]'
  log "4. platform subset amd64+arm64 (skopeo cannot: it copies --multi-arch all), $REPEAT runs"
  cold_runs 4 "$WORK/subset" "$WORK/cache-subset" "$WORK/images.txt" dst-m4 dst-s4
  row "4 subset (2 of 3)" m4 s4 "skopeo has no platform subset: its row copies all 3 platforms (--all); $COLD_NOTE"
  stop_registry dst-m4; stop_registry dst-s4
fi

# archives_scenario KEY COMPRESSION: docker-save archives of 3 arches -> a fresh registry, mirror
# with `compression = COMPRESSION`, skopeo with the same --dest-compress-format, image by image.
archives_scenario() {
  local key=$1 compression=$2 name="arch-$1"
  start_registry "dst-m$key"; start_registry "dst-s$key"
  mkdir -p "$WORK/$name"
  {
    printf '[target]\nregistry = "%s"\n\n[registry."%s"]\ntls = "http"\n\n' "${REG_ADDR[dst-m$key]}" "${REG_ADDR[dst-m$key]}"
    printf '[defaults]\ncompression = "%s"\n\n[cache]\ndir = "%s"\n\n' "$compression" "$WORK/cache-$name"
    while read -r a; do printf '[[archives]]\npath = "%s"\n\n' "$a"; done <"$WORK/archives.txt"
  } >"$WORK/$name/mirrorfile.toml"
  run_mirror "m$key" src "dst-m$key" "$WORK/$name"
  measure "s$key" src "dst-s$key" bash -c '
    set -e
    while read -r archive name arch; do
      skopeo copy --dest-tls-verify=false --dest-compress-format "$2" \
        "docker-archive:$archive:$name" "docker://$0/$name-$arch"
    done <"$1"' "${REG_ADDR[dst-s$key]}" "$WORK/archive-refs.txt" "$compression"
  stop_registry "dst-m$key"; stop_registry "dst-s$key"
  [ "$PODMAN" = 1 ] || return 0
  # What users script with docker/podman: one manifest list per image, each arch's image added
  # from its archive, then `manifest push --all` (pushes every arch and the index). Fresh
  # storage per run; vfs because this machine has no overlay support for podman.
  start_registry "dst-p$key"
  measure "p$key" src "dst-p$key" bash -c '
    set -e
    podman="podman --storage-driver vfs --root $3/root --runroot $3/run --events-backend none"
    rm -rf "$3"
    cut -d" " -f2 "$1" | sort -u | while read -r name; do
      $podman manifest create "list-$name" >/dev/null
      grep -F " $name " "$1" | while read -r archive _ arch; do
        $podman manifest add "list-$name" "docker-archive:$archive:$name" >/dev/null
      done
      $podman manifest push --all --quiet --tls-verify=false --compression-format "$2" \
        "list-$name" "docker://$0/$name"
    done
    rm -rf "$3"' "${REG_ADDR[dst-p$key]}" "$WORK/archive-refs.txt" "$compression" "$WORK/podman-$key"
  stop_registry "dst-p$key"
}

if has 5 || has 6; then
  "$WL" archives --dir "$WORK/layout" --out "$WORK/archives" --repos "$ARCHIVE_REPOS" >"$WORK/archives.txt"
  : >"$WORK/archive-refs.txt"
  while read -r a; do
    arch=$(basename "$a" .tar); arch=${arch#images-}
    head -n "$ARCHIVE_REPOS" "$WORK/images.txt" | while read -r ref; do
      echo "$a ${ref#*/} $arch" >>"$WORK/archive-refs.txt"
    done
  done <"$WORK/archives.txt"
  SKOPEO_NOTE="skopeo pushes one image per arch (tag-ARCH) and cannot assemble the index"
  PODMAN_NOTE="podman: manifest create, manifest add docker-archive:FILE:NAME per arch, manifest push --all, per image: the same result as mirror (one index per image)"
  [ "$PODMAN" = 1 ] || PODMAN_NOTE="podman is not installed: no podman rows (apt-get install podman)"
  if has 5; then
    log "5. docker-save archives (3 arches) -> registry, layers gzip'd"
    archives_scenario 5 gzip
    row "5 archives -> registry (gzip), vs skopeo" m5 s5 "$SKOPEO_NOTE"
    [ "$PODMAN" = 1 ] && row "5 archives -> registry (gzip), vs podman" m5 p5 "$PODMAN_NOTE"
  fi
  if has 6; then
    log "6. the same archives, layers zstd'd (compression = \"zstd\" / --dest-compress-format zstd)"
    archives_scenario 6 zstd
    row "6 archives -> registry (zstd), vs skopeo" m6 s6
    [ "$PODMAN" = 1 ] && row "6 archives -> registry (zstd), vs podman" m6 p6
  fi
  [ "$PODMAN" = 1 ] || NOTES+=("5, 6: $PODMAN_NOTE")
fi

# ---------------------------------------------------------------------------------------------
{
  echo
  echo "workload: $REPOS images x 3 platforms, $(mb "$UNIQUE") MB of distinct blobs (scale $SCALE${BIG:+, with a 1 GiB layer})"
  echo "machine: $(nproc) cores; sha256 ${SHA} MB/s per core (openssl); disk write (fdatasync) $DISK"
  echo
  echo "| scenario | mirror s | baseline s | wall mirror/baseline | client CPU s (m / b) | target registry CPU s (m / b) | source blob MB served (m / b) | target blob MB stored (m / b) | mirror fetched/pushed MB | peak RSS MB (m / b) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in "${ROWS[@]}"; do
    IFS='|' read -r name m s <<<"$r"
    ratio=$(awk -v a="${WALL[$m]}" -v b="${WALL[$s]}" 'BEGIN {printf "%.2f", (b>0)?a/b:0}')
    rep="${REPORTED[$m]}"
    [ "$rep" != "-" ] && rep="$(mb "${rep%/*}") / $(mb "${rep#*/}")"
    echo "| $name | ${WALL[$m]} | ${WALL[$s]} | **$ratio** | ${CPU[$m]} / ${CPU[$s]} | ${REGCPU[$m]} / ${REGCPU[$s]} | $(mb "${SERVED[$m]}") / $(mb "${SERVED[$s]}") | $(mb "${STORED[$m]}") / $(mb "${STORED[$s]}") | $rep | ${RSS[$m]} / ${RSS[$s]} |"
  done
  echo
  for n in "${NOTES[@]}"; do echo "- $n"; done
} | tee "$WORK/results.md"
