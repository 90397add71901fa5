"""The gradebook page: `python -m pose_utils gradebook serve OUT` marks the written answers in a browser.

A local page on 127.0.0.1 (the standard library's HTTP server; no network, nothing to install) lists the
graded submissions of OUT; each submission's page shows every written answer beside its question and the
instructor's rubric (the answer cell's solution in the instructor's notebook), with a form for points and
a comment. A save goes to OUT/marks.json (grading/marks.py: locked, atomic) and rewrites grades.csv,
grades.md and every feedback.md (grading/feedback.write_grades), so the totals include the mark at once.

The answers are the students' text: untrusted. Everything shown is HTML-escaped, the page forbids scripts
(Content-Security-Policy), a form is accepted only with the server's token and only from its own origin
(another web page the grader has open cannot post marks), and requests for another Host are refused
(DNS rebinding).
"""

from __future__ import annotations

import html
import http.server
import re
import secrets
import threading
import urllib.parse
from pathlib import Path

from pose_course.instructor.grading.answer_key import read_instructor
from pose_course.instructor.grading.feedback import write_grades
from pose_course.instructor.grading.grade import graded_results
from pose_course.instructor.grading.marks import file_lock, read_marks, save_mark
from pose_course.instructor.grading.scoring import fmt
from pose_course.instructor.grading.standing import standings
from pose_course.instructor.release import BEGIN_SOLUTION, END_SOLUTION
from pose_utils.errors import ConfigError, PoseUtilsError

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .3em .6em; text-align: left; }
.answer { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; border-top: 2px solid #888;
          padding-top: .8em; margin-top: 1.5em; }
.text { white-space: pre-wrap; background: #f6f6f6; padding: .6em; border-radius: 4px; }
.rubric { white-space: pre-wrap; background: #eef5ee; padding: .6em; border-radius: 4px; }
.saved { color: #176317; } .error { color: #a00; font-weight: bold; }
textarea { width: 100%; min-height: 6em; } input[type=number] { width: 6em; }
"""


def _question(nb, grade_id: str) -> str:
    """The text above an answer cell: the last paragraph of the markdown cell before it."""
    cells = list(nb.cells)
    for i, cell in enumerate(cells):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            before = next((c for c in reversed(cells[:i]) if c.cell_type == "markdown"), None)
            if before is None:
                return ""
            paragraphs = [p.strip() for p in re.split(r"\n\s*\n", before.source) if p.strip()]
            return paragraphs[-1] if paragraphs else ""
    return ""


def _prose(text: str) -> str:
    """Markdown prose as escaped HTML: hard-wrapped lines joined into paragraphs, **bold** kept."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(p)) for p in paragraphs)


def solution_text(template: str) -> str:
    """The instructor's answer inside an answer cell's solution region (all of the cell without one)."""
    lines, inside, found = [], False, []
    for line in template.splitlines():
        if BEGIN_SOLUTION.match(line):
            inside = True
        elif END_SOLUTION.match(line):
            inside = False
            found.append("\n".join(lines).strip())
            lines = []
        elif inside:
            lines.append(line)
    return "\n\n".join(found) if found else template.strip()


class Gradebook:
    """OUT's graded batch as the page shows it; every save rewrites the sheets under one lock."""

    def __init__(self, out_dir, instructor_root):
        self.out_dir = Path(out_dir).resolve()
        if not self.out_dir.is_dir():
            raise ConfigError(f"{out_dir}: no such folder (the --out of a `grade` run)")
        self.instructor = read_instructor(instructor_root)
        if not self.instructor.answers:
            raise ConfigError(f"{instructor_root}: its notebooks have no written answers to mark")
        self.answers = {a.grade_id: a for a in self.instructor.answers}
        self.questions = {a.grade_id: _question(self.instructor.notebooks[a.notebook], a.grade_id)
                          for a in self.instructor.answers}
        self.rubrics = {a.grade_id: solution_text(a.template) for a in self.instructor.answers}
        self.token = secrets.token_urlsafe(24)
        if not self.results():
            raise ConfigError(f"{self.out_dir}: no graded submission in it (run `python -m pose_utils grade` "
                              "first)")

    def results(self):
        return graded_results(self.out_dir, [])

    def save(self, name: str, grade_id: str, points_text: str, comment: str) -> None:
        names = [r.name for r in self.results()]
        points = None
        if points_text.strip():
            try:
                points = float(points_text)
            except ValueError:
                raise ConfigError(f"{name} / {grade_id}: points must be a number, got {points_text!r}"
                                  ) from None
        save_mark(self.out_dir, name, grade_id, points, comment,
                  {g: a.points for g, a in self.answers.items()}, names)
        self.rewrite()

    def rewrite(self) -> None:
        """grades.csv, grades.md and the feedback, from what OUT holds now (a later save waits for it)."""
        with file_lock(self.out_dir / ".grader" / "sheets.lock"):
            write_grades(self.out_dir, self.results(), self.instructor)

    # ------------------------------------------------------------------------- pages

    def page(self, title: str, body: str) -> str:
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{STYLE}</style></head><body>{body}</body></html>")

    def index(self) -> str:
        results = self.results()
        table, course = standings(self.out_dir, results, self.instructor)
        rows = ["<tr><th>submission</th><th>student</th><th>automatic</th><th>written answers</th>"
                "<th>total</th><th>status</th></tr>"]
        for st in table:
            r = st.result
            who = f"{st.student.name} ({st.student.student_id})" if st.student else ""
            marked = len(st.answer_points) - len(st.to_mark)
            rows.append(
                f"<tr id='row-{html.escape(r.name)}'><td><a href='/s/{urllib.parse.quote(r.name)}'>"
                f"{html.escape(r.name)}</a></td><td>{html.escape(who)}</td>"
                f"<td>{fmt(r.total)} / {fmt(r.max)}</td>"
                f"<td>{fmt(st.hand)} ({marked} of {len(st.answer_points)} marked)</td>"
                f"<td class='total'>{fmt(st.final)} / {fmt(st.max)}</td>"
                f"<td>{html.escape(r.status)}</td></tr>")
        unmatched = "".join(f"<li>{html.escape(u)}</li>" for u in course.unmatched(r.name for r in results))
        to_mark = sum(len(st.to_mark) for st in table)
        body = (f"<h1>Gradebook: {html.escape(self.out_dir.name)}</h1>"
                f"<p>{len(results)} submissions; {to_mark} written answers still to mark. Marks are saved "
                f"to {html.escape(str(self.out_dir / 'marks.json'))}; grades.csv includes them.</p>"
                f"<table>{''.join(rows)}</table>"
                + (f"<h2>Roster</h2><ul>{unmatched}</ul>" if unmatched else ""))
        return self.page("Gradebook", body)

    def submission(self, name: str, notice: str = "", error: str = "") -> str | None:
        result = next((r for r in self.results() if r.name == name), None)
        if result is None:
            return None
        marks = read_marks(self.out_dir).get(name, {})
        st = standings(self.out_dir, [result], self.instructor)[0][0]
        q = urllib.parse.quote(name)
        parts = [f"<p><a href='/'>All submissions</a></p><h1>{html.escape(name)}</h1>",
                 f"<p>Automatic checks: {fmt(result.total)} / {fmt(result.max)} points; written answers "
                 f"{fmt(st.hand)} / {fmt(st.max - result.max)}; <strong id='total'>total {fmt(st.final)} / "
                 f"{fmt(st.max)}</strong>" + (f" (late: -{st.late.penalty_percent:g} %)" if st.late and
                                              st.late.penalty_percent else "") + ".</p>"]
        if notice:
            parts.append(f"<p class='saved' id='notice'>{html.escape(notice)}</p>")
        if error:
            parts.append(f"<p class='error' id='error'>{html.escape(error)}</p>")
        for gid, a in self.answers.items():
            entry = result.answers.get(gid)
            text = (entry.text if entry and entry.text else (entry.note if entry else None)) or "(no answer)"
            mark = marks.get(gid)
            points = "" if mark is None else fmt(mark.points)
            comment = "" if mark is None else mark.comment
            parts.append(
                f"<section class='answer' id='answer-{html.escape(gid)}'><div>"
                f"<h2>{html.escape(gid)} ({fmt(a.points)} points, {html.escape(a.notebook)})</h2>"
                f"<p>{_prose(self.questions[gid])}</p><h3>The answer</h3>"
                f"<div class='text'>{html.escape(text)}</div></div><div><h3>Rubric</h3>"
                f"<div class='rubric'>{_prose(self.rubrics[gid])}</div>"
                f"<form method='post' action='/s/{q}'>"
                f"<input type='hidden' name='token' value='{self.token}'>"
                f"<input type='hidden' name='grade_id' value='{html.escape(gid)}'>"
                f"<p><label>Points (0 to {fmt(a.points)}): <input type='number' name='points' min='0' "
                f"max='{a.points:g}' step='any' value='{points}'></label></p>"
                f"<p><label>Comment for the student:<br><textarea name='comment'>{html.escape(comment)}"
                f"</textarea></label></p><p><button type='submit'>Save</button>"
                + (f" <span class='saved'>saved {html.escape(mark.at)}</span>" if mark else "")
                + "</p></form></div></section>")
        return self.page(f"Gradebook: {name}", "".join(parts))


def make_handler(book: Gradebook, port_ref: list):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "pose-gradebook"

        def log_message(self, fmt_, *args):  # the console shows saves, not every request
            pass

        def _host_ok(self) -> bool:
            host = (self.headers.get("Host") or "").lower()
            return host in {f"127.0.0.1:{port_ref[0]}", f"localhost:{port_ref[0]}"}

        def _send(self, status: int, body: str = "", location: str | None = None) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Security-Policy",
                             "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def _name(self) -> str | None:
            path = urllib.parse.urlsplit(self.path).path
            return urllib.parse.unquote(path[3:]) if path.startswith("/s/") else None

        def do_GET(self):
            if not self._host_ok():
                return self._send(403, "wrong host")
            path = urllib.parse.urlsplit(self.path)
            if path.path == "/":
                return self._send(200, book.index())
            if path.path == "/favicon.ico":  # browsers ask; a 404 would be logged as an error
                return self._send(204)
            name = self._name()
            query = urllib.parse.parse_qs(path.query)
            page = book.submission(name, notice=query.get("saved", [""])[0]) if name else None
            return self._send(200, page) if page else self._send(404, "no such submission")

        def do_POST(self):
            if not self._host_ok():
                return self._send(403, "wrong host")
            origin = self.headers.get("Origin")
            if origin not in (None, "null") and origin not in {f"http://127.0.0.1:{port_ref[0]}",
                                                               f"http://localhost:{port_ref[0]}"}:
                return self._send(403, "a form from another site")
            name = self._name()
            length = int(self.headers.get("Content-Length") or 0)
            if name is None or not 0 < length <= 64 * 1024:
                return self._send(400, "bad request")
            form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"),
                                         keep_blank_values=True)
            field = {k: v[0] for k, v in form.items()}
            if not secrets.compare_digest(field.get("token", ""), book.token):
                return self._send(403, "stale or missing token: reload the page")
            gid = field.get("grade_id", "")
            try:
                book.save(name, gid, field.get("points", ""), field.get("comment", ""))
            except PoseUtilsError as e:
                page = book.submission(name, error=str(e))
                return self._send(400 if page else 404, page or "no such submission")
            print(f"saved {name} / {gid}: {field.get('points') or 'cleared'}", flush=True)
            notice = urllib.parse.quote(f"Saved {gid}.")
            return self._send(303, location=f"/s/{urllib.parse.quote(name)}?saved={notice}#answer-{gid}")

    return Handler


def serve(out_dir, instructor_root, port: int = 8765, ready=None, stop: threading.Event | None = None):
    """Serve the gradebook of OUT on 127.0.0.1:PORT (0: any free port) until Ctrl-C or `stop` is set;
    `ready` is called with the URL once it listens."""
    book = Gradebook(out_dir, instructor_root)
    book.rewrite()  # the sheets as of now: marks saved by hand or a roster added since the last run
    port_ref = [port]
    try:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), make_handler(book, port_ref))
    except OSError as e:
        raise ConfigError(f"--port {port}: cannot listen on 127.0.0.1 ({e.strerror}); choose another"
                          ) from None
    port_ref[0] = httpd.server_address[1]
    url = f"http://127.0.0.1:{port_ref[0]}/"
    if ready:
        ready(url)
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), httpd.shutdown()), daemon=True).start()
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
