"""The Rasa SDK action server, run in one process.

``python -m rasa_sdk`` starts Sanic's multi-process mode even for one worker: a manager
process forks the worker, and the worker reports to the manager over multiprocessing proxies
on every request (measured: 7 % of the action server's CPU samples in ``tailor bench``).
This launcher builds the same application with the SDK's own factory (the same routes,
CORS, plugins and tracing) and serves it in a single process, so a request is handled by
the process that received it. Before it stops (SIGTERM, SIGINT) it finishes the log writes
the actions deferred until after their replies (:mod:`tailor.runtime.after_reply`). The
command-line options are the SDK's.

``python -m tailor.runtime.action_server --actions actions --port 5055``
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app_for_serve, create_argument_parser
from rasa_sdk.executor import ActionExecutor
from sanic import HTTPResponse, Request, Sanic, json

from tailor.runtime import hints
from tailor.runtime.after_reply import AFTER_REPLY

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the SDK's options, register the actions and serve them in this process."""
    args = create_argument_parser().parse_args(argv)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME),
        args.log_file,
        args.loglevel,
        args.logging_config_file,
    )
    utils.update_sanic_log_level()
    executor = ActionExecutor()
    executor.register_package(args.actions_module or args.actions)
    app = create_app_for_serve(
        executor, cors_origins=args.cors, auto_reload=False, endpoints=args.endpoints
    )
    app.register_listener(_finish_deferred_work, "before_server_stop")
    if os.environ.get(hints.HINTS_ENV, "on") != "off":
        port = int(args.port)

        async def listen_for_hints(_app: Sanic, _loop: object) -> None:
            try:
                _app.ctx.hints = await hints.listen(port)
            except OSError as exc:  # the action call carries everything: serve without
                log.warning("not receiving turn hints on UDP port %s: %s", port, exc)

        app.register_listener(listen_for_hints, "before_server_start")

    async def hint_stats(_request: Request) -> HTTPResponse:
        return json(dict(hints.STATS))

    app.add_route(hint_stats, "/hints", methods=["GET"])
    host = os.environ.get("SANIC_HOST", "0.0.0.0")
    log.info("Action endpoint is up and running on http://%s:%s", host, args.port)
    app.run(
        host=host,
        port=int(args.port),
        single_process=True,
        access_log=False,
        motd=False,
    )


async def _finish_deferred_work(_app: Sanic, _loop: object) -> None:
    pending = AFTER_REPLY.pending()
    if pending:
        log.info("Finishing the log writes of %d conversation(s) before stopping", pending)
    await AFTER_REPLY.drain()


if __name__ == "__main__":
    main()
