"""The stand-in account's message templates and WeChat's client_msg_id window (§13)."""

from __future__ import annotations

# §13.5: what get_all_private_template lists for the demo account.
DEMO_TEMPLATES = [
    {"template_id": "tplGradesPublished0000000000000000000000001", "title": "成绩发布通知",
     "primary_industry": "教育", "deputy_industry": "院校",
     "content": "{{thing1.DATA}}\n课程：{{thing2.DATA}}\n发布时间：{{time3.DATA}}",
     "example": "你的成绩已发布\n课程：高等数学\n发布时间：2026年1月20日 10:00"},
    {"template_id": "tplNotice00000000000000000000000000000000002", "title": "通知提醒",
     "primary_industry": "教育", "deputy_industry": "院校",
     "content": "{{thing1.DATA}}\n时间：{{time2.DATA}}", "example": "明天停课\n时间：2026年1月21日"},
]
DEDUP_SECONDS = 600  # §13.2: client_msg_id holds for 10 minutes
