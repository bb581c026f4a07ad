"""보육통계: childcare statistics tables (``tables``), their files (``files``: CSV and XLSX) and charts (``charts``)."""
