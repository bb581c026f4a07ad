"""Official childcare (어린이집) lists: Seoul Open Data OA-20300 and the national 어린이집 기본정보 export.

Modules by job: ``formats`` (columns of each source, keys, dates and 시도 names), ``rows`` (one CSV row to staging
values), ``locate`` (coordinates checked and fallbacks, point-in-polygon) and ``load`` (the import entry points,
staging, upsert, history and unlisting; its docstring states the snapshot rules).
"""

from geo.ingest.childcare.formats import (
    AGE_GROUP_LABELS,
    CHILD_COLUMNS,
    CLASS_COLUMNS,
    NATIONAL_BASIC,
    SEOUL_OA20300,
    SNAPSHOT_MODES,
    SOURCE_NATIONAL,
    SOURCE_SEOUL,
    STAFF_COLUMNS,
    CsvFormat,
    date_from_file_name,
    names_sido,
    national_key,
    sido_short_name,
)
from geo.ingest.childcare.load import import_national_basic, import_seoul_oa20300
from geo.ingest.childcare.locate import (
    CITY_HALL_PLACEHOLDER_LAT_LON,
    DISTRICT_INSET_M,
    DONG_SNAP_M,
    GEOCODE_DISTRICT,
    GEOCODE_LEGAL_DONG,
    GEOCODE_SOURCE,
    GEOCODE_SOURCE_SNAPPED,
    MAX_OFFSET_FROM_DISTRICT_M,
    _Lookups,
    legal_dong_names_in_address,
)

__all__ = [
    "AGE_GROUP_LABELS", "CHILD_COLUMNS", "CITY_HALL_PLACEHOLDER_LAT_LON", "CLASS_COLUMNS", "DISTRICT_INSET_M",
    "DONG_SNAP_M", "GEOCODE_DISTRICT", "GEOCODE_LEGAL_DONG", "GEOCODE_SOURCE", "GEOCODE_SOURCE_SNAPPED",
    "MAX_OFFSET_FROM_DISTRICT_M", "NATIONAL_BASIC", "SEOUL_OA20300", "SNAPSHOT_MODES", "SOURCE_NATIONAL",
    "SOURCE_SEOUL", "STAFF_COLUMNS", "CsvFormat", "_Lookups", "date_from_file_name", "import_national_basic",
    "import_seoul_oa20300", "legal_dong_names_in_address", "names_sido", "national_key", "sido_short_name",
]
