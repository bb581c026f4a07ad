"""The 신학기 (new-term admission season) mix for locust: parents searching the map, opening centres, checking
their rank and applying.

Run by ``benchmarks.bench_load`` (headless, bounded in time, against 127.0.0.1 only), which seeds the parents and
writes a JSON snapshot of them (tokens, children, active entries) that this file reads from the path in
``DOLBOM_LOAD_SEED`` right before each run. Standalone::

    DOLBOM_LOAD_SEED=seed.json locust -f benchmarks/load/locustfile.py --headless -u 8 -r 8 --run-time 20s \
        --host http://127.0.0.1:8000

One user class, ``Parent``: in 신학기 nearly every visitor is a parent, logged in (a bearer token of an
identity-verified parent) with one child in a 0-2세반, and the same person searches, compares, applies and then
keeps checking the rank. Each user is a closed-loop client without think time (a stand-in for many real parents
who each pause between clicks), so the rate a configuration reaches at a concurrency is its capacity there.

Task weights (share of a parent's requests; the numbers are assumptions, see README "Capacity plan"):

==========================  ======  =================================================================
task (request name)         weight  why
==========================  ======  =================================================================
``search:radius``           20      the map's default view: centres within 1 km of home, filtered by the
                                    child's age class and half the time by a service (extended hours...)
``search:nearest``          8       "closest to me" list (k=10, age filter)
``search:area``             12      browsing a 구 or 행정동 (limit 50)
``detail``                  25      the centre's panel: every search is followed by ~1-2 panels opened
``queue``                   5       the public anonymised queue of a centre before applying
``rank``                    25      GET /waitlist/me: parents check ranks several times a day in 신학기
``apply``                   5       POST /waitlist/entries: at most 3 active applications per child, so
                                    few per visit; when the child has 3, the oldest is withdrawn first
                                    (``withdraw``, counted as its own request) so the load never runs
                                    out of room (a parent changing their list)
==========================  ======  =================================================================

So ~45 % searches, ~30 % centre reads, 25 % rank checks and ~5-7 % writes. Tags (``search``, ``detail``,
``rank``, ``apply``) let the harness run one request type alone (``--tags rank``) to measure its CPU per request.

The portal (issue 24): two more user classes on the server-rendered pages, with the web session cookies of the
portal's login (the harness issues the sessions, as ``POST /portal/login`` does once the password is checked,
and puts them in the seed). Users are split 4 : 3 : 1 (``Parent`` : ``PortalParent`` : ``CentreStaff``):

==============================  ======  ============================================================
``PortalParent`` task           weight  why
==============================  ======  ============================================================
``portal:applications``         2       "my applications" opened (a write: the look is remembered)
``portal:rank``                 24      the open page's live rank fragment, which htmx asks for every 5 s
                                        with the version it shows: 204 while nothing moved, else the
                                        new list. 12 polls per page opened = the page left open for a
                                        minute; each user stands in for many parents with the page open
``portal:bookings``             3       the booking search: slots for a day near a place (a 행정동 name
                                        half the time, else "lat, lon" near home), an age, sometimes a
                                        service; the page also lists "my bookings"
==============================  ======  ============================================================

``CentreStaff`` (one per seeded staff account, cycled): ``portal:queue``, the staff queue page of a class age
with a queue (``?age=``), as staff reload it between checking claims. Tags ``my-applications``, ``rank-poll``,
``booking-search``, ``staff-queue`` (``benchmarks.bench_load.TYPES``).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, tag, task

_SEED_PATH = os.environ.get("DOLBOM_LOAD_SEED", "")
SERVICES = ("extended_hours", "holiday", "infant_only", "disability_integrated")


def _load_seed(path: str) -> dict[str, Any]:
    if not path:
        raise RuntimeError("set DOLBOM_LOAD_SEED to the seed JSON written by benchmarks.bench_load")
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


SEED = _load_seed(_SEED_PATH)
# Each user takes the next parent: distinct parents as long as users <= parents (no two users racing on one
# child's applications).
_PARENTS = itertools.cycle(SEED["parents"])
_STAFF = itertools.cycle(SEED.get("staff") or [{}])
SESSION_COOKIE, CSRF_COOKIE = "dolbom_session", "dolbom_csrf"
VERSION = re.compile(r'data-version="([0-9a-f]+)"')
BOOKABLE = ("holiday", "extended_hours", "hourly", "twenty_four_hour")
SEOUL = timezone(timedelta(hours=9))


class Parent(FastHttpUser):
    """A logged-in parent of one child in 신학기 (see the module docstring for the task weights)."""

    weight = 4
    wait_time = constant(0)

    def on_start(self) -> None:
        """Take the next seeded parent; remember its child's active entries (oldest first)."""
        parent = next(_PARENTS)
        self.headers = {"Authorization": "Bearer " + parent["token"]}
        self.child_id = int(parent["child_id"])
        self.age_class = int(parent["age_class"])
        self.home = parent["home"]  # [lat, lon] of the home (near the seeded centres)
        self.entries: list[tuple[str, str]] = [(e["entry"], e["centre"]) for e in parent["entries"]]
        self.targets: list[str] = list(parent["targets"])
        self.rng = random.Random(parent["child_id"])

    def _point(self) -> tuple[float, float]:
        """A point within ~1 km of home, or of a random centre (parents look near work and relatives too)."""
        if self.rng.random() < 0.5:
            lat, lon = self.home
        else:
            centre = self.rng.choice(SEED["centres"])
            lat, lon = centre["lat"], centre["lon"]
        return (round(lat + self.rng.uniform(-0.009, 0.009), 6), round(lon + self.rng.uniform(-0.011, 0.011), 6))

    @tag("search")
    @task(20)
    def radius(self) -> None:
        """Map view: 1 km around a point, the child's age class, sometimes a service."""
        lat, lon = self._point()
        params: dict[str, Any] = {"lat": lat, "lon": lon, "radius_m": 1000, "age": self.age_class, "limit": 50}
        if self.rng.random() < 0.5:
            params["service"] = self.rng.choice(SERVICES)
        self.client.get("/facilities/radius", params=params, name="search:radius")

    @tag("search")
    @task(8)
    def nearest(self) -> None:
        """The 10 nearest centres with a class for the child."""
        lat, lon = self._point()
        self.client.get("/facilities/nearest", params={"lat": lat, "lon": lon, "k": 10, "age": self.age_class},
                        name="search:nearest")

    @tag("search")
    @task(12)
    def area(self) -> None:
        """A 구 (one time in three) or a 행정동, limit 50."""
        if self.rng.random() < 1 / 3:
            params = {"district": self.rng.choice(SEED["districts"]), "limit": 50}
        else:
            params = {"dong": self.rng.choice(SEED["dongs"]), "limit": 50}
        self.client.get("/facilities/area", params=params, name="search:area")

    @tag("detail")
    @task(25)
    def detail(self) -> None:
        """A centre's detail panel."""
        centre = self.rng.choice(SEED["centres"])
        self.client.get(f"/facilities/{centre['id']}", name="detail")

    @tag("detail")
    @task(5)
    def queue(self) -> None:
        """The public queue of a centre the parent considers, for the child's age class."""
        code = self.rng.choice(self.targets)
        self.client.get(f"/waitlist/centres/{code}/queue", params={"age_class": self.age_class}, name="queue")

    @tag("rank")
    @task(25)
    def rank(self) -> None:
        """My entries with live ranks (a write too: the view is remembered)."""
        self.client.get("/waitlist/me", headers=self.headers, name="rank")

    @tag("apply")
    @task(5)
    def apply(self) -> None:
        """Apply to a centre not yet applied to; withdraw the oldest entry first when the child has 3."""
        if len(self.entries) >= 3:
            entry, _ = self.entries.pop(0)
            self.client.post(f"/waitlist/entries/{entry}/withdraw", headers=self.headers, name="withdraw")
        taken = {code for _, code in self.entries}
        choices = [code for code in self.targets if code not in taken]
        code = self.rng.choice(choices)
        with self.client.post("/waitlist/entries", json={"child_id": self.child_id, "centre": code},
                              headers=self.headers, name="apply", catch_response=True) as response:
            if response.status_code == 201:
                self.entries.append((response.json()["entry"], code))
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


def _session_headers(session: str, csrf: str) -> dict[str, str]:
    """The portal's login cookies (session and CSRF), as a browser sends them."""
    return {"Cookie": f"{SESSION_COOKIE}={session}; {CSRF_COOKIE}={csrf}", "Accept-Language": "ko"}


class PortalParent(FastHttpUser):
    """A parent on the portal's pages: "my applications" with its live rank fragment, and the booking search."""

    weight = 3
    wait_time = constant(0)

    def on_start(self) -> None:
        """Take the next seeded parent with its web session; the version of the list is learnt on first open."""
        parent = next(_PARENTS)
        self.headers = _session_headers(parent["session"], parent["csrf"])
        self.home = parent["home"]
        self.age_class = int(parent["age_class"])
        self.version = ""
        self.rng = random.Random(-int(parent["child_id"]))

    def _remember(self, html: str) -> None:
        found = VERSION.search(html)
        if found:
            self.version = found.group(1)

    @tag("my-applications")
    @task(2)
    def applications(self) -> None:
        """The "my applications" page (ranks, forecasts, offers, notices)."""
        with self.client.get("/portal/applications", headers=self.headers, name="portal:applications",
                             catch_response=True) as response:
            if response.status_code == 200 and 'id="entries"' in (response.text or ""):
                self._remember(response.text or "")
                response.success()
            else:
                response.failure(f"{response.status_code}: not the applications page")

    @tag("rank-poll")
    @task(24)
    def rank_poll(self) -> None:
        """The open page's poll (htmx, every 5 s): 204 while the list shown is current, else the new list."""
        with self.client.get("/portal/applications/entries", params={"v": self.version},
                             headers={**self.headers, "HX-Request": "true"}, name="portal:rank",
                             catch_response=True) as response:
            if response.status_code == 204:
                response.success()
            elif response.status_code == 200 and 'id="entries"' in (response.text or ""):
                self._remember(response.text or "")
                response.success()
            else:
                response.failure(f"{response.status_code}: not a rank fragment")

    @tag("booking-search")
    @task(3)
    def bookings(self) -> None:
        """Care slots for a day in the next week near a place, for the child's age."""
        if self.rng.random() < 0.5 and SEED.get("places"):
            near = self.rng.choice(SEED["places"])
        else:
            lat, lon = self.home
            near = f"{lat + self.rng.uniform(-0.005, 0.005):.5f}, {lon + self.rng.uniform(-0.005, 0.005):.5f}"
        day = datetime.now(UTC).astimezone(SEOUL).date() + timedelta(days=self.rng.randrange(7))
        params = {"near": near, "on": day.isoformat(), "age": str(self.rng.randrange(6)),
                  "radius_m": str(self.rng.choice((1000, 2000, 2000, 3000)))}
        if self.rng.random() < 0.5:
            params["service"] = self.rng.choice(BOOKABLE)
        with self.client.get("/portal/bookings", params=params, headers=self.headers, name="portal:bookings",
                             catch_response=True) as response:
            # 422: a place name the search does not know (shown inline), not a server failure.
            if response.status_code in (200, 422) and "<form" in (response.text or ""):
                response.success()
            else:
                response.failure(f"{response.status_code}: not the bookings page")


class CentreStaff(FastHttpUser):
    """A centre's staff member on the queue page of their centre (reloaded between checks of claims)."""

    weight = 1 if SEED.get("staff") else 0  # none seeded (``seed_portal`` not run): no staff users
    wait_time = constant(0)

    def on_start(self) -> None:
        """Take the next seeded staff account (cycled: several users may share one centre)."""
        staff = next(_STAFF)
        self.headers = _session_headers(staff.get("session", ""), staff.get("csrf", ""))
        self.centre = staff.get("centre", "")
        self.ages = list(staff.get("ages") or [0])
        self.rng = random.Random(self.centre)

    @tag("staff-queue")
    @task
    def queue(self) -> None:
        """A class age's queue with its claims, the offer form and the centre's offers."""
        with self.client.get(f"/portal/staff/centres/{self.centre}/queue",
                             params={"age": self.rng.choice(self.ages)}, headers=self.headers,
                             name="portal:queue", catch_response=True) as response:
            if response.status_code == 200 and 'id="queue-title"' in (response.text or ""):
                response.success()
            else:
                response.failure(f"{response.status_code}: not the staff queue")
