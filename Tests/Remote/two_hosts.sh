#!/usr/bin/env bash
# Two hosts on one machine: network namespaces joined by a veth pair with
# private addresses that exist inside the namespaces only. The "beamline"
# runs the virtual detector and the viewer, the "cluster" runs the session;
# every endpoint between them speaks CURVE. Prints one line per check,
# `CHECK name ok` or `CHECK name FAIL why`, leaves its files in WORK, and
# removes its namespaces and processes however it ends.
#
#   two_hosts.sh NS_MPIRUN RAW_SCAN WORK [MPI_LAUNCHER]
set -uo pipefail
bin=$1 raw=$2 work=$3 launcher=${4:-mpirun}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
tag=$$
bl=nsbl$tag cl=nscl$tag
vb=vbl$tag vc=vcl$tag
net=10.$((tag % 200 + 20)).$(((tag / 200) % 250)).
blip=${net}1 clip=${net}2
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 1
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    for n in $bl $cl; do
        # Anything still running inside (mpirun's ranks) goes too, by PID.
        for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$n" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { # name condition-status why
    if [ "$2" -eq 0 ]; then echo "CHECK $1 ok"; else echo "CHECK $1 FAIL $3"; fi
}
wait_for() { # file pattern seconds
    for _ in $(seq 1 $(($3 * 10))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
in_bl() { ip netns exec $bl "$@"; }
in_cl() { ip netns exec $cl "$@"; }

mkdir -p "$work" || exit 1
ip netns add $bl && ip netns add $cl || { echo "CHECK namespaces FAIL cannot add network namespaces"; exit 1; }
# Both ends are made inside their namespaces: the addresses never exist on this host.
ip link add $vb netns $bl type veth peer name $vc netns $cl || { echo "CHECK namespaces FAIL cannot make the veth pair"; exit 1; }
in_bl ip addr add $blip/24 dev $vb && in_cl ip addr add $clip/24 dev $vc
for n in $bl $cl; do ip netns exec $n ip link set lo up; done
in_bl ip link set $vb up && in_cl ip link set $vc up
# A new veth takes a moment to carry packets.
for _ in $(seq 1 20); do in_bl ping -c 1 -W 1 $clip >/dev/null 2>&1 && break; sleep 0.5; done
in_bl ping -c 1 -W 1 $clip >/dev/null 2>&1
check link $? "the beamline cannot reach the cluster at $clip"

# Keys: the detector lets in the session; the session lets in alice (an operator) and the viewer.
k=$work/keys
for name in detector session alice viewer mallory; do "$bin" keys generate $k --name $name >/dev/null || exit 1; done
mkdir -p $work/receivers $work/clients $work/operators
cp $k/session.key $work/receivers/ && cp $k/alice.key $k/viewer.key $work/clients/ && cp $k/alice.key $work/operators/

# Plaintext beyond loopback is refused before anything binds.
in_cl "$bin" stream --connect tcp://$blip:5555 --control tcp://$clip:5556 -o $work/refused --scans 1 >$work/refused.log 2>&1
status=$?
[ $status -ne 0 ] && grep -q "keys generate" $work/refused.log && [ ! -e $work/refused/logs ]
check plaintext-refused $? "status $status: $(head -c 300 $work/refused.log)"

# A capture of everything that crosses the wire, from before the first byte.
ip netns exec $cl tcpdump -i $vc -U -w $work/wire.pcap >$work/tcpdump.log 2>&1 &
pids+=($!)
wait_for $work/tcpdump.log "listening on" 20

ip netns exec $bl "$bin" fccd-sim --input "$raw" --bind tcp://$blip:5555 --rate 100 --linger 5 \
    --curve-secret $k/detector.key_secret --curve-clients $work/receivers >$work/sim.log 2>&1 &
pids+=($!)
wait_for $work/sim.log "sending [0-9]+ dark" 60

ip netns exec $cl "$launcher" -n 2 "$bin" stream --connect tcp://$blip:5555 --control tcp://$clip:5556 --publish tcp://$clip:5557 \
    -o $work/scans --log-dir none --iterations 5 --status-interval 0.2 \
    --curve-secret $k/session.key_secret --detector-key $k/detector.key \
    --curve-clients $work/clients --curve-operators $work/operators >$work/session.log 2>&1 &
pids+=($!)
session=$!
wait_for $work/session.log "publishing on" 120
check session-started $? "$(tail -c 600 $work/session.log)"

ip netns exec $bl "$bin" view --session tcp://$clip:5557,tcp://$clip:5556 --http $blip:8443 \
    --curve-secret $k/viewer.key_secret --session-key $k/session.key \
    --tls-cert $work/tls/page.crt --tls-key $work/tls/page.key >$work/viewer.log 2>&1 &
pids+=($!)
wait_for $work/viewer.log "view: https://" 60
url=$(grep -oE "https://[^ ]+\?token=[0-9a-f]+" $work/viewer.log | head -1)
token=${url##*token=}
[ ${#token} -eq 64 ]
check viewer-token $? "no generated token in: $(head -c 400 $work/viewer.log)"

wait_for $work/session.log "scan scan-1 done" 240
check scan-done $? "$(tail -c 800 $work/session.log)"

# Refused: a plaintext client and an unlisted key get no answer; the session goes on.
ask() { in_bl $py "$here/control_client.py" tcp://$clip:5556 "$1" $k/session.key "$2" 3; }
plain=$(ask - '{"command": "shutdown"}')
unlisted=$(ask $k/mallory.key_secret '{"command": "shutdown"}')
[[ $plain == *no_answer* && $unlisted == *no_answer* ]]
check strangers-refused $? "plaintext: $plain; unlisted: $unlisted"
grep -q "refused a connection from $blip" $work/session.log
check refusal-logged $? "$(grep -i refused $work/session.log | head -3)"
# The viewer (a listed client, not an operator) may read but not change.
viewer_abort=$(ask $k/viewer.key_secret '{"command": "abort"}')
[[ $viewer_abort == *'"ok": false'* && $viewer_abort == *operator* ]]
check non-operator-refused $? "$viewer_abort"
status=$(ask $k/alice.key_secret '{"command": "status"}')
kill -0 $session 2>/dev/null && [[ $status == *'"scans_finished": 1'* ]]
check session-untouched $? "$status"

# The viewer, reached from the cluster's side: nothing without its token; with it, the scan's counts and pictures.
curl_cl() { in_cl curl -sk --max-time 10 -o $work/$1 -w "%{http_code}" "${@:2}"; }
code=$(curl_cl anon.txt https://$blip:8443/api/stats)
[ "$code" = 401 ]
check viewer-needs-token $? "HTTP $code without a token"
sleep 1.5
code=$(curl_cl metrics.txt -H "Authorization: Bearer $token" https://$blip:8443/metrics)
code2=$(curl_cl stats.json -H "Authorization: Bearer $token" https://$blip:8443/api/stats)
echo "VIEWER_METRICS_HTTP $code"
echo "VIEWER_STATS_HTTP $code2"

shutdown=$(ask $k/alice.key_secret '{"command": "shutdown"}')
for _ in $(seq 1 600); do kill -0 $session 2>/dev/null || break; sleep 0.1; done
wait $session
check operator-shutdown $? "$shutdown; $(tail -c 400 $work/session.log)"

# tcpdump ends on its next packet after SIGTERM (every byte is already written: -U).
kill ${pids[0]} 2>/dev/null
in_bl ping -c 2 -i 0.2 -W 1 $clip >/dev/null 2>&1
sleep 0.5
kill -9 ${pids[0]} 2>/dev/null
wait ${pids[0]} 2>/dev/null
# The handshake names its mechanism in clear (proof the capture saw ZeroMQ); no frame header may be readable.
grep -aq CURVE $work/wire.pcap
check capture-saw-curve $? "no ZeroMQ CURVE handshake in $(stat -c %s $work/wire.pcap 2>/dev/null) bytes"
! grep -aqE '"shape_y"|"scan_id"|"identifier"' $work/wire.pcap
check no-plaintext-header $? "a frame or scan header crossed the wire in clear"
echo "WIRE_BYTES $(stat -c %s $work/wire.pcap)"
echo "DONE"
