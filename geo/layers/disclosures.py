"""The disclosures layer: centres with a disclosure of a violation published today (위반사실 공표).

Source: ``disclosures`` whose ``shown`` is true (``geo.disclosure.records.refresh_shown`` keeps it: at each
publication and withdrawal, and by the daily ``dolbom disclosures refresh``), joined to the centre and the
sanction. One feature per disclosure (a centre with two has two points at one place); the feature id is the
disclosure's id. The names published with the violation (대표자, 원장) are in the layer, as the law publishes
them; the layer holds nothing else about people.
"""

from __future__ import annotations

from sqlalchemy import and_

from geo.layers.base import Layer, Property
from geo.models.disclosure import Disclosure, Sanction
from geo.models.facilities import Facility

_d = Disclosure.__table__.alias("dd")
_s = Sanction.__table__.alias("ds")
_f = Facility.__table__.alias("df")

LAYER = Layer(
    id="disclosures",
    title="위반사실 공표 (centres with a published violation)",
    description="Centres whose violation is published today under 영유아보육법 §49-3: the violation, the "
                "disposition and its dates, and the publication period (docs/disclosure.md).",
    from_=_d.join(_s, _s.c.id == _d.c.sanction_id).join(_f, and_(_f.c.id == _d.c.facility_id, _d.c.shown)),
    id_column=_d.c.id,
    geometry=_f.c.geom_4326,
    geometry_type="Point",
    properties=(
        Property("code", "string", _f.c.code, "어린이집코드"),
        Property("name", "string", _f.c.name, "어린이집명"),
        Property("address", "string", _f.c.address, "road address"),
        Property("district_code", "string", _f.c.district_code, "5-digit 시군구 code"),
        Property("representative_name", "string", _s.c.representative_name, "대표자 (as published)"),
        Property("director_name", "string", _s.c.director_name, "원장 (as published)"),
        Property("kind", "string", _s.c.kind, "kind of disposition (geo.disclosure.rules.SanctionKind)"),
        Property("violation", "string", _s.c.violation, "위반행위"),
        Property("disposition", "string", _s.c.disposition, "처분내용"),
        Property("legal_basis", "string", _s.c.legal_basis, "근거법령"),
        Property("decided_at", "date", _s.c.decided_at, "처분일"),
        Property("final_at", "date", _s.c.final_at, "확정일"),
        Property("published_from", "date", _d.c.published_from, "first day of publication"),
        Property("published_until", "date", _d.c.published_until, "last day of publication (inclusive)"),
    ),
    minzoom=8,
    maxzoom=18,
    tile_properties=((0, ("code", "kind")), (13, ("code", "name", "kind", "published_until"))),
    temporal="published_from",
)
