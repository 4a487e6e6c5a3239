"""StarVid Studio web app: ``python app.py`` (http://127.0.0.1:7860; GPU used when present).

Host and port come from ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` (Docker and Spaces set
them); the queue lets one generation run at a time while other users wait their turn.
"""

import os

from starvid.ui import build_app, launch_options, warm_up

if __name__ == "__main__":
    warm_up()  # the parser and the planner's model load while the page opens
    build_app().queue(default_concurrency_limit=1, max_size=32).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_options(),
    )
