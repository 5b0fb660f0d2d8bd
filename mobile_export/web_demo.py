"""Serve the browser page (`mobile_export/web/`) with an exported classifier folder on
localhost: the page at /, the folder at /model/.

    python -m mobile_export.web_demo GUARD_FOLDER [PORT]

The page's runtime comes from the npm registry: `npm ci --prefix mobile_export/web`.
"""

import contextlib
import functools
import http.server
import os
import sys
import threading

from gemma_kit.errors import GemmaKitError

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, model=None, **kwargs):
        self.model = model
        super().__init__(*args, directory=WEB, **kwargs)

    def translate_path(self, path):
        # /model/<file> is the classifier folder; only its three files are served.
        name = path.split("?", 1)[0].split("#", 1)[0]
        if name.startswith("/model/"):
            base = os.path.basename(name)
            return os.path.join(self.model, base) if base in ("guard.json", "guard.tflite", "tokenizer.model") else ""
        return super().translate_path(path)

    def end_headers(self):
        # Cross-origin isolation lets the page share memory between WebAssembly threads:
        # LiteRT.js then runs its threaded build on every core.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(guard_folder, port=0):
    """Yield the page's URL while a server on 127.0.0.1 serves it and `guard_folder`."""
    if not os.path.isdir(os.path.join(WEB, "node_modules", "@litertjs", "core")):
        raise GemmaKitError(f"the page's runtime is not installed: run `npm ci --prefix {WEB}`")
    if not os.path.isfile(os.path.join(guard_folder, "guard.tflite")):
        raise GemmaKitError(f"{guard_folder}: no guard.tflite (make one with `gemma-kit export-guard`)")
    handler = functools.partial(_Handler, model=os.path.abspath(guard_folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    with serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8000) as url:
        print(f"open {url} (Ctrl-C stops)")
        threading.Event().wait()
