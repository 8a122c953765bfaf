#!/usr/bin/env python3
"""A tiny operator service for Peer Calls' webhook permissions provider.

Peer Calls (with --auth webhook --auth-webhook http://127.0.0.1:8081/join) POSTs each
join here: {"room", "accessToken", "cookie", "address", "creating"}. This service answers
from a table of invitations, the access tokens it handed out in links such as
https://calls.example.com/call/standup?access_token=inv-ada:

  inv-ada     Ada, who runs the room (roomAdmin)
  inv-bo      Bo, a member
  inv-viewer  a webinar viewer: receives, never publishes or chats

Every other token, and a room the invitation is not for, is denied with a reason the
page shows. Run it with:  python3 permissions_service.py 8081
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INVITATIONS = {
    "inv-ada": {"rooms": ["standup"], "name": "Ada", "video": {"roomAdmin": True}},
    "inv-bo": {"rooms": ["standup"], "name": "Bo", "video": {}},
    "inv-viewer": {
        "rooms": ["standup", "all-hands"],
        "name": None,
        "video": {"canPublish": False, "canPublishData": False},
    },
}


def decide(question):
    invitation = INVITATIONS.get(question.get("accessToken") or "")
    if invitation is None:
        return {"allow": False, "reason": "this link has no valid invitation"}
    if question["room"] not in invitation["rooms"]:
        return {"allow": False, "reason": f"your invitation is not for room {question['room']}"}
    if question["creating"] and not invitation["video"].get("roomAdmin"):
        return {"allow": False, "reason": "the call has not started; wait for its host"}
    return {"allow": True, "name": invitation["name"], "video": invitation["video"]}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        answer = decide(json.loads(self.rfile.read(length)))
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # quiet: one line per join is the server's job


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
