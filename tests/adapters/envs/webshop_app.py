"""A local HTTP server that speaks WebShop's web-app protocol, for testing the ``webshop:URL``
adapter where the real WebShop (its data, its Java search index) cannot run.

It serves the routes of WebShop's Flask app (``web_agent_site/app.py``) with pages built like its
templates (ids, classes, forms, radio inputs with ``data-url``, the done page's hidden goal
details and ``#reward``), over webshop-lite's catalog, search and reward. Sessions whose id
contains ``fixed`` get the goal numbered after the id's last ``_``, as in WebShop.
"""

from __future__ import annotations

import ast
import html
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from hero_agents.adapters.envs.webshop_catalog import Catalog, Goal
from hero_agents.adapters.envs.webshop_lite import PAGE_SIZE, SearchIndex
from hero_agents.adapters.envs.webshop_reward import purchase_reward


def _q(value: Any) -> str:
    """A path segment as Flask's url_for writes one: str(value), percent-quoted."""
    return quote(str(value), safe="")


def _e(text: Any) -> str:
    return html.escape(str(text))


def _form(action: str, label: str, css: str = "btn btn-primary") -> str:
    button = f'<button type="submit" class="{css}">{label}</button>'
    return f'<form method="post" action="{action}">{button}</form>'


def _back_to_search(session: str) -> str:
    return _form(f"/{session}", "Back to Search", "btn btn-success")


class WebShopApp:
    """WebShop's web app on 127.0.0.1, over `catalog`; `requests` logs (method, path)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.index = SearchIndex(list(catalog.products.values()))
        self.goals: list[Goal] = list(catalog.goals)
        self.sessions: dict[str, Goal] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_next = False
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                app.handle(self, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                app.handle(self, form)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WebShopApp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- routing --------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        self.requests.append((request.command, request.path))
        if self.fail_next:
            self.fail_next = False
            return self._send(request, HTTPStatus.INTERNAL_SERVER_ERROR, "boom")
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        route, args = parts[0], parts[1:]
        if len(parts) == 1:
            return self._index(request, route, form)
        session = args[0]
        goal = self.sessions[session]
        if route == "search_results":
            page = self.results_page(session, goal, ast.literal_eval(args[1]), int(args[2]))
        elif route == "item_page":
            asin, keywords, number, options = args[1:5]
            page = self.item_page(session, goal, asin, keywords, number, ast.literal_eval(options))
        elif route == "item_sub_page":
            asin, keywords, number, sub, options = args[1:6]
            page = self.sub_page(session, goal, asin, keywords, number, sub, options)
        elif route == "done":
            page = self.done_page(goal, args[1], ast.literal_eval(args[2]))
        else:
            return self._send(request, HTTPStatus.NOT_FOUND, "no route")
        self._send(request, HTTPStatus.OK, page)

    def _index(self, request: BaseHTTPRequestHandler, session: str, form: dict[str, str]) -> None:
        if session not in self.sessions:
            if "fixed" not in session:
                return self._send(request, HTTPStatus.BAD_REQUEST, "random goals not served")
            self.sessions[session] = self.goals[int(session.split("_")[-1])]
        if "search_query" in form:
            keywords = form["search_query"].lower().split(" ")
            request.send_response(HTTPStatus.FOUND)
            request.send_header("Location", f"/search_results/{session}/{_q(keywords)}/1")
            request.send_header("Content-Length", "0")
            request.end_headers()
            return None
        return self._send(request, HTTPStatus.OK, self.search_page(session, self.sessions[session]))

    def _send(self, request: BaseHTTPRequestHandler, status: int, body: str) -> None:
        data = body.encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    # -- pages (built like WebShop's templates) ------------------------------------------

    @staticmethod
    def _page(body: str) -> str:
        return (
            "<!DOCTYPE html>\n<html>\n  <head>\n    <title>WebShop</title>\n"
            '    <script>var x = "not text";</script>\n  </head>\n  <body>\n'
            f"{body}\n  </body>\n</html>\n"
        )

    @staticmethod
    def _instruction(goal: Goal, space: str = "") -> str:
        text = f"<h4>Instruction:{space}<br>{_e(goal.instruction)}</h4>"
        return f'<div id="instruction-text">\n  {text}\n</div>'

    def search_page(self, session: str, goal: Goal) -> str:
        return self._page(
            '<div id="logo"><h2>WebShop</h2></div>\n'
            f"{self._instruction(goal, ' ')}\n"
            f'<form role="form" method="post" action="/{session}">\n'
            '  <input id="search_input" type="text" name="search_query" required/>\n'
            '  <button class="btn btn-success" type="submit">Search</button>\n</form>'
        )

    def results_page(self, session: str, goal: Goal, keywords: list[str], page: int) -> str:
        results = self.index.search(" ".join(keywords))
        shown = results[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        kw = _q(keywords)
        turn = ""
        if page > 1:
            turn += _form(f"/search_results/{session}/{kw}/{page - 1}", "&lt; Prev")
        turn += _form(f"/search_results/{session}/{kw}/{page + 1}", "Next &gt;")
        items = "".join(
            f'<div class="list-group-item">\n'
            f'  <h4 class="product-asin"><a class="product-link" '
            f'href="/item_page/{session}/{p.asin}/{kw}/{page}/{_q({})}">{p.asin}</a></h4>\n'
            f'  <h4 class="product-title">{_e(p.title)}</h4>\n'
            f'  <h5 class="product-price">${p.price:.2f}</h5>\n'
            f"  <!-- <h5>{p.category}</h5> -->\n</div>\n"
            for p in shown
        )
        return self._page(
            f"{self._instruction(goal)}\n{_back_to_search(session)}\n"
            f"<h3>Page {page} (Total results: {len(results)})</h3>\n{turn}\n{items}"
        )

    def item_page(
        self, session: str, goal: Goal, asin: str, kw: str, page: str, options: dict[str, str]
    ) -> str:
        product = self.catalog.products[asin]
        kw = _q(kw)
        radios = ""
        for name, values in product.options.items():
            radios += f"<h4>{_e(name)}</h4>\n"
            for i, value in enumerate(values):
                chosen = _q({**options, name: value})
                radios += (
                    f'<input type="radio" id="radio_{name}{i}" name="{_e(name)}" '
                    f'value="{_e(value)}" '
                    f'data-url="/item_page/{session}/{asin}/{kw}/{page}/{chosen}">\n'
                    f'<label for="radio_{name}{i}">{_e(value)}</label>\n'
                )
        here = _q(options)
        sub = f"/item_sub_page/{session}/{asin}/{kw}/{page}"
        return self._page(
            f"{self._instruction(goal)}\n{_back_to_search(session)}\n"
            f"{_form(f'/search_results/{session}/{kw}/{page}', '&lt; Prev')}\n{radios}"
            f"<h2>{_e(product.title)}</h2>\n<h4>Price: ${product.price:.2f}</h4>\n"
            "<h4>Rating: N.A.</h4>\n"
            f"{_form(f'{sub}/Description/{here}', 'Description')}\n"
            f"{_form(f'{sub}/Features/{here}', 'Features')}\n"
            f"{_form(f'{sub}/Reviews/{here}', 'Reviews')}\n"
            f"{_form(f'/done/{session}/{asin}/{here}', 'Buy Now', 'btn btn-lg purchase')}"
        )

    def sub_page(
        self, session: str, goal: Goal, asin: str, kw: str, page: str, sub: str, options: str
    ) -> str:
        product = self.catalog.products[asin]
        if sub == "Description":
            content = f'<p class="product-info">{_e(product.description)}</p>'
        elif sub == "Features":
            content = "".join(f"<li><p>{_e(b)}</p></li>" for b in product.bullet_points)
        else:
            content = ""
        back = f"/item_page/{session}/{asin}/{_q(kw)}/{page}/{_q(options)}"
        return self._page(
            f"{self._instruction(goal)}\n{_back_to_search(session)}\n"
            f"{_form(back, '&lt; Prev')}\n{content}"
        )

    def done_page(self, goal: Goal, asin: str, options: dict[str, str]) -> str:
        reward = purchase_reward(self.catalog.products[asin], options, goal)
        return self._page(
            "<h1>Thank you for shopping with us!</h1>\n<h3>Your code: </h3>\n"
            "<p><pre>None</pre> (Paste it in your MTurk interface.)</p>\n"
            '<div style="display:none">\n  <h2>Purchased</h2><h4 id="asin">asin<pre>'
            f'{asin}</pre></h4>\n  <h2>Target</h2><h4 id="goal-asin">asin<pre>{goal.asin}'
            f'</pre></h4>\n  <h4 id="goal-attrs">attrs<pre>{list(goal.attributes)}</pre></h4>\n'
            "</div>\n"
            f'<h3 id="reward">Your score (min 0.0, max 1.0)<pre>{reward.reward}</pre></h3>\n'
            f'<h4 hidden>Reward Details <div id="reward_info"><pre>{reward.as_info()}</pre>'
            "</div></h4>"
        )
