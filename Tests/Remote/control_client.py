"""One control request over CURVE (or plaintext), as a remote client makes it.

    control_client.py ENDPOINT SECRET|- SERVER_KEY|- JSON [TIMEOUT_S]

Prints the reply, or {"no_answer": true} when none comes in time (a refused
key never completes its connection).
"""
import json
import sys

import zmq
import zmq.auth

endpoint, secret_file, server_file, request = sys.argv[1:5]
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 3
s = zmq.Context().socket(zmq.REQ)
s.linger = 0
if secret_file != "-":
    s.curve_publickey, s.curve_secretkey = zmq.auth.load_certificate(secret_file)
    s.curve_serverkey, _ = zmq.auth.load_certificate(server_file)
s.connect(endpoint)
s.send_json(json.loads(request))
print(json.dumps(s.recv_json() if s.poll(int(timeout * 1000)) else {"no_answer": True}))
