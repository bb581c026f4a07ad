"""어린이집 지도점검 (inspections): the checklist as versioned data, the risk-based planning list of a 구, and one
transition table for inspections and their findings with corrective orders (every change audited)."""
