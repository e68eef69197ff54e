"""Realistic made-up petitions (信访事项) for the demo network and the benchmarks.

Everything here is invented: names are drawn from common surnames and given
names, ID numbers are well-formed (with a valid check digit) but belong to
no one, phone numbers use the 138-0013-xxxx style test range. The texts are
assembled from phrases of the kind a village liaison writes, per category,
with varying places, sums, dates and details, so that they compress as real
text does rather than as random characters (which compress hardly at all)
or as a repeated sentence (which compresses too well).
"""

from __future__ import annotations

import random
import struct
import zlib
from datetime import date, timedelta

from node import validate

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = ("秀英", "桂英", "建国", "建华", "志强", "春梅", "海燕", "国庆", "德明", "玉兰",
         "金凤", "永福", "长山", "树林", "红梅", "丽华", "文军", "小明", "淑珍", "宝山",
         "凤英", "爱华", "光明", "卫东", "桂兰", "振华", "立新", "俊杰", "明亮", "秋菊")
VILLAGES = ("东山村", "西河村", "南岗村", "北坡村", "柳树屯", "杨家庄", "石门村", "花园村",
            "新民村", "红旗村", "前进村", "白沙村", "青龙村", "双桥村", "大王庄", "李家湾")
GROUPS = ("一组", "二组", "三组", "四组", "五组", "六组", "七组")
OFFICES = ("镇民政办", "村委会", "镇社会事务办", "县民政局", "镇财政所", "片区工作站")
MONTHS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二")
REGIONS = ("110105", "320102", "330106", "370102", "410105", "420106", "430104", "510104")

OPENINGS = (
    "{village}{group}村民{name}来{channel}反映，",
    "{village}村民{name}（{age}岁）到村委会反映，",
    "信息员走访时了解到，{village}{group}{name}家",
    "{name}等{people}户村民联名反映，",
    "{village}{name}多次来电称，",
)
FACTS = {
    "dibao": (
        "其家庭{months}个月的低保金一直未到账，每月{amount}元",
        "去年{month}月年审后被取消低保资格，但家庭收入并未增加",
        "家中两位老人长期患病，申请低保已有{months}个月仍无答复",
        "村里评议低保时未公示名单，怀疑有关系户优亲厚友",
        "低保金发放到一卡通后被扣除了{amount}元，银行说是村里代扣",
    ),
    "tekun": (
        "孤寡老人{name2}无人照料，申请特困供养至今未批",
        "家中突发火灾，房屋烧毁，申请临时救助{amount}元未获答复",
        "因病住院花费{amount}元，医保报销后仍有较大缺口",
    ),
    "youfu": (
        "退役军人{name2}的优抚金自{month}月起停发",
        "烈属抚恤金标准与邻村不一致，相差{amount}元",
        "参战退役人员身份认定材料已交{months}个月，没有结果",
    ),
    "elderly": (
        "村里养老院收费从每月{amount}元涨到更高，却没有说明",
        "高龄津贴{months}个月没有发放，老人生活困难",
        "居家养老服务人员上门次数不足，老人无人照看",
    ),
    "children": (
        "父母外出务工，孩子由爷爷奶奶照看，申请事实无人抚养儿童补贴未果",
        "孤儿基本生活费{months}个月未到账",
    ),
    "disability": (
        "重度残疾人护理补贴从{month}月起停发，每月{amount}元",
        "残疾证评定等级有误，申请重新评定未获受理",
    ),
    "marriage": (
        "婚姻登记信息有误，身份证号码登记错了一位，无法办理其他手续",
        "补领结婚证时被要求提供村里开具的证明，不知道去哪里开",
    ),
    "funeral": (
        "公墓收费标准不清，每个墓穴收费{amount}元，没有票据",
        "村里规划公益性公墓占用了承包地，补偿没有落实",
    ),
    "placenames": (
        "村名变更后门牌没有更换，快递和户籍地址对不上",
        "两村交界处的土地归属在区划图上标注不清，引发纠纷",
    ),
    "grassroots": (
        "村委会换届选举时选民登记有遗漏，{people}户外出务工人员未登记",
        "村务公开栏{months}个月未更新，集体收入去向不明",
        "征地补偿款{amount}元分配方案未经村民代表大会讨论",
    ),
    "social_org": (
        "村里的老年协会收取会费{amount}元后没有开展活动",
    ),
    "charity": (
        "慈善捐款{amount}元的使用情况没有公开",
    ),
    "other": (
        "反映的事项涉及多个部门，不知道应该找哪里",
    ),
}
FOLLOWS = (
    "，曾于{month}月向{office}反映过，答复说正在研究，之后没有下文",
    "，本人多次找{office}询问，每次都说材料不全，但没有一次性告知需要补什么",
    "，家里{people}口人主要靠务农为生，年收入不足{amount}元",
    "，村干部说名额有限，要等下一批",
    "，邻居家情况相似却已经办下来了，群众意见较大",
    "，{office}工作人员让其回去等通知，至今已过去{months}个月",
    "，老伴去年{month}月去世，儿子在外打工很少回家",
    "，申请材料是{month}月底交到{office}的，有签收记录",
    "，村里开会时有{people}名村民代表在场，可以作证",
    "，本人患有高血压和糖尿病，每月药费约{amount}元",
    "，上次反映后{office}派人来看过一次，说会尽快处理",
    "，当事人不识字，材料是请邻居{name2}帮忙填写的",
)
DETAILS = (
    "据了解，同组还有{people}户存在类似情况。",
    "经查，该户{month}月的收入核查表上只有村干部签字，没有本人签字。",
    "当事人提供了银行流水和病历复印件共{people}页。",
    "村委会主任{name2}称此事需要镇里决定，村里做不了主。",
    "{office}的答复意见是按政策办理，但没有说明是哪一条政策。",
    "该户住房为上世纪八十年代修建的土坯房，已有裂缝。",
    "当事人称如果{months}个月内没有结果，将联合其他村民到县里反映。",
    "信息员{name2}已于{month}月{day}日电话联系当事人，约定上门核实。",
    "事情起因是{month}月村里调整了补助名单，但没有张榜公示。",
    "当事人的女儿{name2}在县城打工，也来电询问过办理进度。",
)
REQUESTS = (
    "请求尽快核实情况，依规补发应得款项。",
    "希望有关部门给个明确答复，并说明依据。",
    "要求公开评议结果，重新审核资格。",
    "请求上级督促{office}限期办理。",
    "希望能一次性告知需要的材料，不要让老人来回跑。",
)
CLOSINGS = (
    "信息员已初步核实，情况基本属实。",
    "村委会表示将配合调查。",
    "当事人情绪较稳定，表示愿意等待处理结果。",
    "当事人情绪激动，称如得不到解决将到镇里上访。",
    "",
)


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def id_number(rng: random.Random, born: date | None = None) -> str:
    """A well-formed 18-digit resident ID number (GB 11643-1999) that is no one's."""
    born = born or date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 60))
    body = f"{rng.choice(REGIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    total = sum(int(d) * w for d, w in zip(body, validate.ID_WEIGHTS, strict=True))
    return body + validate.ID_CHECK[total % 11]


def phone(rng: random.Random) -> str:
    return f"1380013{rng.randrange(10000):04d}"


def _fill(template: str, rng: random.Random, name: str) -> str:
    return template.format(
        village=rng.choice(VILLAGES), group=rng.choice(GROUPS), name=name,
        name2=person_name(rng), channel=rng.choice(("访", "电", "信")),
        age=rng.randrange(45, 92), day=rng.randrange(1, 29), people=rng.randrange(2, 40),
        months=rng.randrange(2, 13),
        month=rng.choice(MONTHS), amount=rng.randrange(2, 400) * 10, office=rng.choice(OFFICES))


def summary(rng: random.Random, category: str, name: str, length: int = 200) -> str:
    """A petition summary of about ``length`` characters (at least one full sentence)."""
    parts = [_fill(rng.choice(OPENINGS), rng, name)]
    facts = FACTS.get(category, FACTS["other"])
    parts.append(_fill(rng.choice(facts), rng, name))
    follows, details = rng.sample(FOLLOWS, len(FOLLOWS)), rng.sample(DETAILS, len(DETAILS))
    while sum(map(len, parts)) < length * 0.75 and (follows or details):
        if follows:
            follow = _fill(follows.pop(), rng, name)
            parts.append((follow[1:] if parts[-1].endswith("。") else follow) + "。")
        if details and sum(map(len, parts)) < length * 0.75:
            parts.append(_fill(details.pop(), rng, name))
    parts.append(_fill(rng.choice(REQUESTS), rng, name))
    parts.append(rng.choice(CLOSINGS))
    return "".join(parts)


def case_fields(rng: random.Random, category: str | None = None, length: int = 200) -> dict:
    """Fields for ``cases.register``: one to three petitioners, a category, a summary."""
    category = category or rng.choice(list(FACTS))
    people = [{"name": person_name(rng), "id_number": id_number(rng), "phone": phone(rng)}
              for _ in range(rng.choice((1, 1, 1, 2, 3)))]
    if len(people) > 1:
        people[0]["representative"] = True
    channel = rng.choice(("visit", "phone", "letter", "screening"))
    return {"category": category, "channel": channel,
            "summary": summary(rng, category, people[0]["name"], length),
            "request": _fill(rng.choice(REQUESTS), rng, people[0]["name"]),
            "petitioners": people}


# -- early warnings (预警) of group petitions ------------------------------------

WARNING_SUBJECTS = {
    "grassroots": ("征地补偿款分配争议", "村委会换届选举争议", "集体收入去向不明"),
    "dibao": ("低保评议结果不公", "低保金集中停发"),
    "youfu": ("退役军人待遇落实", "参战退役人员生活补助"),
    "funeral": ("公墓迁建补偿", "殡葬收费标准争议"),
    "elderly": ("养老院收费上涨", "高龄津贴停发"),
    "tekun": ("特困供养标准调整",),
    "disability": ("残疾人两项补贴核减",),
    "placenames": ("村界划分纠纷",),
}
WARNING_TRIGGERS = (
    "{people}户村民在微信群里商量{when}一起到{dest}反映{subject}问题。",
    "有村民打印了联名信，已有{people}人签名，准备{when}去{dest}。",
    "{name}等人近日多次聚集在村委会门口，情绪激动，扬言要去{dest}讨说法。",
    "信息员排查发现，{subject}涉及{people}户，部分群众已联系车辆准备{when}出发。",
    "{name}在短视频平台发帖称要组织{people}人到{dest}反映{subject}，已有多人转发。",
)
WARNING_MEASURES = (
    "包村干部已逐户走访，讲解政策，稳定情绪。",
    "已召开村民代表会议，公开相关账目，答复群众疑问。",
    "已安排专人盯守，与带头人{name}谈心谈话，劝其依法逐级反映。",
    "已联系{office}到村现场办公，当场解答群众提出的问题。",
)
DESTINATION_NAMES = {"town": "镇政府", "city": "市信访局", "province": "省城",
                     "beijing": "北京"}


def warning_fields(rng: random.Random, category: str | None = None, place: str | None = None,
                   today: date | None = None) -> dict:
    """Fields for ``warnings.raise_warning``: a made-up early warning of a group petition.

    Mostly small groups heading for the town or the city; now and then a large one,
    one heading further or near a sensitive date, so that every risk level occurs.
    """
    category = category or rng.choice(list(WARNING_SUBJECTS))
    subject = rng.choice(WARNING_SUBJECTS.get(category, WARNING_SUBJECTS["grassroots"]))
    size = rng.choice((6, 8, 12, 15, 20, 25, 30, 45, 60, 80))
    destination = rng.choice(("town", "town", "town", "city", "city", "province", "beijing"))
    expected = (today or date.today()) + timedelta(days=rng.randrange(2, 21))
    trigger = rng.choice(WARNING_TRIGGERS).format(
        people=size, when=f"{expected.month}月{expected.day}日",
        dest=DESTINATION_NAMES[destination], subject=subject, name=person_name(rng))
    return {"source": rng.choice(("screening", "screening", "village_report", "visit_signs",
                                  "opinion")),
            "subject": subject, "category": category,
            "place": place or rng.choice(VILLAGES) + rng.choice(GROUPS),
            "trigger": trigger, "expected_size": size, "expected_date": expected.isoformat(),
            "destination": destination,
            "skip_level_risk": destination in ("province", "beijing") or rng.random() < 0.2,
            "beijing_risk": destination == "beijing"}


def warning_measures(rng: random.Random) -> str:
    """What a village or town did about a warning (处置措施)."""
    return rng.choice(WARNING_MEASURES).format(
        name=person_name(rng), office=rng.choice(("镇民政办", "镇社会事务办", "县民政局")))


# -- the register (登记造册) and attachments ------------------------------------------------

def entry(rng: random.Random, kind: str) -> dict:
    """Fields for ``rounds.record``: a key person (重点人员) or a hot spot (热点)."""
    category = rng.choice(list(WARNING_SUBJECTS))
    title = rng.choice(WARNING_SUBJECTS[category])
    fields = {"kind": kind, "title": title, "category": category,
              "risk": rng.choice(("general", "major", "major", "serious")),
              "responsible": person_name(rng), "place": rng.choice(VILLAGES) + rng.choice(GROUPS),
              "measures": warning_measures(rng)}
    if kind == "person":
        fields["people"] = [{"name": person_name(rng), "id_number": id_number(rng),
                             "phone": phone(rng)}]
    return fields


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def photo_png(rng: random.Random, width: int = 48, height: int = 30) -> bytes:
    """A small made-up photo: a PNG of soft colour bands (no one's ID card)."""
    base = [rng.randrange(120, 230) for _ in range(3)]
    rows = b"".join(b"\x00" + bytes(
        (base[c] + (x * 3 + y * 2) % 40) % 256 for x in range(width) for c in range(3))
        for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def letter_pdf() -> bytes:
    """A one-page PDF standing for a scanned letter."""
    stream = b"BT /F1 14 Tf 72 720 Td (Letter of petition - sample) Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return out
