# Sourced by scripts: await_match FILE REGEX [SECONDS] prints the first match
# of REGEX (grep -o) in FILE once it appears; fails after SECONDS (default 60).
await_match() {
    local file=$1 pattern=$2 tenths=$(( ${3:-60} * 10 )) found=""
    for _ in $(seq "$tenths"); do
        found=$(grep -o "$pattern" "$file" 2>/dev/null | head -1 || true)
        [ -n "$found" ] && { echo "$found"; return 0; }
        sleep 0.1
    done
    return 1
}
