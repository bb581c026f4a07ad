"""Notification texts in Korean, English, Chinese and Vietnamese (SMS-length, one per event)."""

from __future__ import annotations

from geo.errors import InvalidQuery

LANGS: tuple[str, ...] = ("ko", "en", "zh", "vi")

TEMPLATES: dict[str, dict[str, str]] = {
    "booked": {
        "ko": "[돌봄] {centre} {when} 예약이 접수되었습니다 (예약번호 {booking_id}).",
        "en": "[dolbom] Your booking at {centre} for {when} is received (booking {booking_id}).",
        "zh": "[dolbom] 您在{centre}预约的{when}托育已受理（预约号 {booking_id}）。",
        "vi": "[dolbom] Đã nhận đặt chỗ tại {centre} lúc {when} (mã {booking_id}).",
    },
    "waiting": {
        "ko": "[돌봄] {centre} {when} 대기 {position}번으로 등록되었습니다 (예약번호 {booking_id}).",
        "en": "[dolbom] You are number {position} on the waiting list of {centre} for {when} (booking {booking_id}).",
        "zh": "[dolbom] 您已登记{centre} {when}的候补，排第{position}位（预约号 {booking_id}）。",
        "vi": "[dolbom] Bạn đứng thứ {position} trong danh sách chờ tại {centre} lúc {when} (mã {booking_id}).",
    },
    "promoted": {
        "ko": "[돌봄] 자리가 나서 {centre} {when} 예약이 확정 대기로 바뀌었습니다 (예약번호 {booking_id}).",
        "en": "[dolbom] A place freed up: your booking at {centre} for {when} is now booked (booking {booking_id}).",
        "zh": "[dolbom] 有空位了：您在{centre} {when}的候补已转为预约（预约号 {booking_id}）。",
        "vi": "[dolbom] Đã có chỗ trống: bạn đã được đặt chỗ tại {centre} lúc {when} (mã {booking_id}).",
    },
    "confirmed": {
        "ko": "[돌봄] {centre}에서 {when} 예약을 확정했습니다 (예약번호 {booking_id}).",
        "en": "[dolbom] {centre} confirmed your booking for {when} (booking {booking_id}).",
        "zh": "[dolbom] {centre}已确认您{when}的预约（预约号 {booking_id}）。",
        "vi": "[dolbom] {centre} đã xác nhận đặt chỗ lúc {when} (mã {booking_id}).",
    },
    "cancelled": {
        "ko": "[돌봄] {centre} {when} 예약이 취소되었습니다 (예약번호 {booking_id}).",
        "en": "[dolbom] Your booking at {centre} for {when} is cancelled (booking {booking_id}).",
        "zh": "[dolbom] 您在{centre} {when}的预约已取消（预约号 {booking_id}）。",
        "vi": "[dolbom] Đặt chỗ tại {centre} lúc {when} đã bị hủy (mã {booking_id}).",
    },
    "emergency_accepted": {
        "ko": "[돌봄] 긴급보육 요청을 {centre}에서 수락했습니다. 연락처 {phone}",
        "en": "[dolbom] {centre} accepted your emergency care request. Phone {phone}",
        "zh": "[dolbom] {centre}已接受您的紧急托育请求。电话 {phone}",
        "vi": "[dolbom] {centre} đã nhận yêu cầu giữ trẻ khẩn cấp của bạn. Điện thoại {phone}",
    },
    "alert_vacancy": {
        "ko": "[돌봄] {place}에서 {distance_km}km 떨어진 {centre}에 만 {age}세 빈자리가 {free}석 생겼습니다. "
              "알림 끄기: {link}",
        "en": "[dolbom] {centre}, {distance_km} km from {place}, now has {free} free place(s) for age {age}. "
              "Stop these alerts: {link}",
        "zh": "[dolbom] 距{place} {distance_km}公里的{centre}现有{free}个{age}岁空位。取消提醒：{link}",
        "vi": "[dolbom] {centre}, cách {place} {distance_km} km, hiện có {free} chỗ trống cho trẻ {age} tuổi. "
              "Hủy thông báo: {link}",
    },
}


def check_lang(lang: str) -> str:
    """``lang`` when it is one of ``LANGS``; ``InvalidQuery`` otherwise."""
    if lang not in LANGS:
        raise InvalidQuery(f"lang must be one of {', '.join(LANGS)} (got {lang!r})", param="lang")
    return lang


def render(template: str, lang: str, **params: object) -> str:
    """The text of ``template`` in ``lang`` with ``params`` filled in."""
    return TEMPLATES[template][check_lang(lang)].format(**params)
