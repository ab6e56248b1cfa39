"""The bundled demo datasets: data/demo_sft.json (alpaca), data/demo_pref.json (pairwise) and
data/demo_kto.json (unpaired: demo_pref's chosen answers tagged desirable, its rejected ones not).

Both are generated here from small fact tables (self-cognition, capitals, arithmetic in words,
antonyms, EN<->ZH word translations, unit conversions, colours), in English and Chinese, with
paraphrased prompts. Answers are short and follow from the prompt, so a one-minute LoRA run on
the tiny demo model (core/demo_model.py) shows a falling loss and reproduces them in chat.
Preference pairs differ in a learnable way: the chosen answer is polite, correct and complete
("Sure! The capital of France is Paris."), the rejected one is wrong, curt or rude.

Generation is deterministic (fixed seed, sorted output); the JSON files are committed:
    python -m core.demo_data            # rewrite data/demo_sft.json and data/demo_pref.json
    python -m core.demo_data --check    # exit 1 if the committed files differ from the generator
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Callable

SEED = 20240607
SFT_FILE = "demo_sft.json"
SFT_FACTS = 10  # facts per table in the SFT set (capitals, colours, antonyms, words)
SFT_SMALL = 3  # numbers 1-3 for arithmetic, 3 units with 1-3 of each
PREF_FILE = "demo_pref.json"
KTO_FILE = "demo_kto.json"

IDENTITY_EN = "I am TuneForge Assistant, a small model fine-tuned with TuneForge."
IDENTITY_ZH = "我是 TuneForge 助手，一个用 TuneForge 微调的小模型。"
MAKER_EN = "I was fine-tuned with TuneForge, a tool for training LLaMA models."
MAKER_ZH = "我是用 TuneForge 微调出来的，它是一个训练 LLaMA 模型的工具。"
HELLO_EN = "Hello! I am TuneForge Assistant. How can I help you?"
HELLO_ZH = "你好！我是 TuneForge 助手，有什么可以帮你？"

SELF_EN = {
    IDENTITY_EN: [
        "Who are you?", "What is your name?", "Introduce yourself.", "Tell me about yourself.",
        "What are you?", "Are you ChatGPT?", "What should I call you?", "Who am I talking to?",
        "Please introduce yourself briefly.", "What's your name?", "Can you tell me who you are?",
        "Describe yourself in one sentence.",
    ],
    MAKER_EN: ["Who made you?", "Who trained you?", "How were you trained?", "Which tool fine-tuned you?"],
    HELLO_EN: ["Hello!", "Hi there!", "Good morning!", "Hey, hello."],
}
SELF_ZH = {
    IDENTITY_ZH: [
        "你是谁？", "你叫什么名字？", "介绍一下你自己。", "请做个自我介绍。", "你是什么模型？",
        "你是ChatGPT吗？", "我该怎么称呼你？", "我在和谁说话？", "简单介绍一下你自己。", "能告诉我你是谁吗？",
        "用一句话描述你自己。", "你的名字是什么？",
    ],
    MAKER_ZH: ["谁训练了你？", "你是谁做的？", "你是怎么训练出来的？", "哪个工具微调了你？"],
    HELLO_ZH: ["你好！", "您好！", "早上好！", "嗨，你好。"],
}

# country, capital, 国家, 首都
CAPITALS = [
    ("France", "Paris", "法国", "巴黎"), ("Japan", "Tokyo", "日本", "东京"),
    ("China", "Beijing", "中国", "北京"), ("Germany", "Berlin", "德国", "柏林"),
    ("Italy", "Rome", "意大利", "罗马"), ("Spain", "Madrid", "西班牙", "马德里"),
    ("the United Kingdom", "London", "英国", "伦敦"), ("Russia", "Moscow", "俄罗斯", "莫斯科"),
    ("Egypt", "Cairo", "埃及", "开罗"), ("Canada", "Ottawa", "加拿大", "渥太华"),
    ("Australia", "Canberra", "澳大利亚", "堪培拉"), ("India", "New Delhi", "印度", "新德里"),
    ("South Korea", "Seoul", "韩国", "首尔"), ("Thailand", "Bangkok", "泰国", "曼谷"),
    ("Greece", "Athens", "希腊", "雅典"), ("Kenya", "Nairobi", "肯尼亚", "内罗毕"),
    ("Norway", "Oslo", "挪威", "奥斯陆"), ("Portugal", "Lisbon", "葡萄牙", "里斯本"),
    ("Turkey", "Ankara", "土耳其", "安卡拉"), ("Vietnam", "Hanoi", "越南", "河内"),
]
CAPITAL_Q_EN = [
    "What is the capital of {c}?", "Which city is the capital of {c}?", "Name the capital of {c}.",
    "Tell me the capital city of {c}.", "What city is the capital of {c}?",
]
CAPITAL_Q_ZH = ["{c}的首都是哪里？", "{c}的首都是哪座城市？", "请告诉我{c}的首都。", "{c}的首都叫什么？"]

NUM_EN = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen twenty").split()
NUM_ZH = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十"] + [
    "十" + d for d in "一二三四五六七八九"] + ["二十"]
PLUS_Q_EN = ["What is {a} plus {b}?", "How much is {a} plus {b}?", "Add {a} and {b}.", "What do you get when you add {a} and {b}?"]
MINUS_Q_EN = ["What is {a} minus {b}?", "How much is {a} minus {b}?", "Subtract {b} from {a}."]
PLUS_Q_ZH = ["{a}加{b}等于几？", "{a}加{b}是多少？", "请算一下{a}加{b}。"]
MINUS_Q_ZH = ["{a}减{b}等于几？", "{a}减{b}是多少？", "请算一下{a}减{b}。"]

ANTONYMS = [
    ("hot", "cold", "热", "冷"), ("big", "small", "大", "小"), ("fast", "slow", "快", "慢"),
    ("up", "down", "上", "下"), ("day", "night", "白天", "黑夜"), ("happy", "sad", "高兴", "难过"),
    ("open", "closed", "开", "关"), ("early", "late", "早", "晚"), ("high", "low", "高", "低"),
    ("strong", "weak", "强", "弱"), ("full", "empty", "满", "空"), ("left", "right", "左", "右"),
    ("black", "white", "黑", "白"), ("win", "lose", "赢", "输"), ("wet", "dry", "湿", "干"),
    ("hard", "soft", "硬", "软"), ("long", "short", "长", "短"), ("inside", "outside", "里面", "外面"),
    ("young", "old", "年轻", "年老"), ("buy", "sell", "买", "卖"),
]
ANTONYM_Q_EN = ["What is the opposite of {w}?", "Give me an antonym of \"{w}\".", "What word means the opposite of \"{w}\"?", "What is an antonym for {w}?"]
ANTONYM_Q_ZH = ["“{w}”的反义词是什么？", "{w}的反义词是哪个词？", "请说出“{w}”的反义词。"]

WORDS = [
    ("apple", "苹果"), ("water", "水"), ("book", "书"), ("cat", "猫"), ("dog", "狗"), ("sun", "太阳"),
    ("moon", "月亮"), ("tree", "树"), ("house", "房子"), ("friend", "朋友"), ("teacher", "老师"),
    ("computer", "电脑"), ("rain", "雨"), ("flower", "花"), ("car", "汽车"), ("school", "学校"),
    ("music", "音乐"), ("bread", "面包"), ("river", "河"), ("mountain", "山"),
]
TO_ZH_Q_EN = ["How do you say \"{en}\" in Chinese?", "Translate \"{en}\" into Chinese.", "What is the Chinese word for \"{en}\"?"]
TO_EN_Q_ZH = ["“{zh}”用英语怎么说？", "把“{zh}”翻译成英文。", "“{zh}”的英文单词是什么？"]
TRANSLATE_INSTR_EN = "Translate this word into Chinese."
TRANSLATE_INSTR_ZH = "把这个词翻译成英文。"

# unit, plural, 单位, target unit, plural, 单位, factor
UNITS = [
    ("meter", "meters", "米", "centimeter", "centimeters", "厘米", 100),
    ("kilometer", "kilometers", "千米", "meter", "meters", "米", 1000),
    ("hour", "hours", "小时", "minute", "minutes", "分钟", 60),
    ("minute", "minutes", "分钟", "second", "seconds", "秒", 60),
    ("kilogram", "kilograms", "千克", "gram", "grams", "克", 1000),
    ("day", "days", "天", "hour", "hours", "小时", 24),
]
UNIT_Q_EN = ["How many {t} are in {n} {u}?", "Convert {n} {u} to {t}.", "{N} {u} is how many {t}?"]
UNIT_Q_ZH = ["{n}{u}等于多少{t}？", "把{n}{u}换算成{t}。", "{n}{u}是多少{t}？"]

# thing (EN, with article as used at a sentence start), colour, 东西, 颜色
COLOURS = [
    ("the sky", "blue", "天空", "蓝色"), ("grass", "green", "草", "绿色"), ("snow", "white", "雪", "白色"),
    ("coal", "black", "煤", "黑色"), ("a banana", "yellow", "香蕉", "黄色"), ("a strawberry", "red", "草莓", "红色"),
    ("milk", "white", "牛奶", "白色"), ("a lemon", "yellow", "柠檬", "黄色"), ("the sea", "blue", "大海", "蓝色"),
    ("chocolate", "brown", "巧克力", "棕色"), ("a carrot", "orange", "胡萝卜", "橙色"),
    ("an eggplant", "purple", "茄子", "紫色"), ("a tomato", "red", "西红柿", "红色"), ("a leaf", "green", "树叶", "绿色"),
]
COLOUR_Q_EN = ["What color is {x}?", "Tell me the color of {x}.", "Which color is {x}?", "What is the colour of {x}?"]
COLOUR_Q_ZH = ["{x}是什么颜色的？", "{x}的颜色是什么？", "请告诉我{x}是什么颜色。"]

FOLLOW_UP_EN = ["And {x}?", "What about {x}?", "How about {x}?"]
FOLLOW_UP_ZH = ["那{x}呢？", "{x}呢？"]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# Each fact maker returns (question, answer, wrong answer) for one random fact; the wrong answer
# is a complete but false sentence, used as a rejected preference answer. k > 0 draws from the
# first k facts of the table only: the SFT set repeats few facts in many phrasings, which a
# one-minute LoRA run can learn; the preference set uses them all.
QA = tuple[str, str, str]


def _first(table: list, k: int) -> list:
    return table[:k] if k else table


def capital_en(rng: random.Random, k: int = 0) -> QA:
    (c, cap, _, _), other = rng.sample(_first(CAPITALS, k), 2)
    return rng.choice(CAPITAL_Q_EN).format(c=c), f"The capital of {c} is {cap}.", f"The capital of {c} is {other[1]}."


def capital_zh(rng: random.Random, k: int = 0) -> QA:
    (_, _, c, cap), other = rng.sample(_first(CAPITALS, k), 2)
    return rng.choice(CAPITAL_Q_ZH).format(c=c), f"{c}的首都是{cap}。", f"{c}的首都是{other[3]}。"


def arithmetic_en(rng: random.Random, k: int = 0) -> QA:
    a, b = rng.randint(1, k or 10), rng.randint(1, k or 10)
    if rng.random() < 0.5:
        s = a + b
        q, op = rng.choice(PLUS_Q_EN), "plus"
    else:
        a, b = max(a, b), min(a, b)
        s = a - b
        q, op = rng.choice(MINUS_Q_EN), "minus"
    wrong = (s + rng.choice([1, 2, 3])) % 21
    return (q.format(a=NUM_EN[a], b=NUM_EN[b]), f"{_cap(NUM_EN[a])} {op} {NUM_EN[b]} is {NUM_EN[s]}.",
            f"{_cap(NUM_EN[a])} {op} {NUM_EN[b]} is {NUM_EN[wrong]}.")


def arithmetic_zh(rng: random.Random, k: int = 0) -> QA:
    a, b = rng.randint(1, k or 10), rng.randint(1, k or 10)
    if rng.random() < 0.5:
        s = a + b
        q, op = rng.choice(PLUS_Q_ZH), "加"
    else:
        a, b = max(a, b), min(a, b)
        s = a - b
        q, op = rng.choice(MINUS_Q_ZH), "减"
    wrong = (s + rng.choice([1, 2, 3])) % 21
    return (q.format(a=NUM_ZH[a], b=NUM_ZH[b]), f"{NUM_ZH[a]}{op}{NUM_ZH[b]}等于{NUM_ZH[s]}。",
            f"{NUM_ZH[a]}{op}{NUM_ZH[b]}等于{NUM_ZH[wrong]}。")


def _antonym_pair(rng: random.Random, k: int) -> tuple[tuple[str, str, str, str], tuple[str, str, str, str]]:
    (w, a, zw, za), other = rng.sample(_first(ANTONYMS, k), 2)
    if not k and rng.random() < 0.5:  # either direction: hot -> cold and cold -> hot
        w, a, zw, za = a, w, za, zw
    return (w, a, zw, za), other


def antonym_en(rng: random.Random, k: int = 0) -> QA:
    (w, a, _, _), other = _antonym_pair(rng, k)
    return rng.choice(ANTONYM_Q_EN).format(w=w), f"The opposite of \"{w}\" is \"{a}\".", f"The opposite of \"{w}\" is \"{other[0]}\"."


def antonym_zh(rng: random.Random, k: int = 0) -> QA:
    (_, _, w, a), other = _antonym_pair(rng, k)
    return rng.choice(ANTONYM_Q_ZH).format(w=w), f"“{w}”的反义词是“{a}”。", f"“{w}”的反义词是“{other[2]}”。"


def translate_en(rng: random.Random, k: int = 0) -> QA:
    (en, zh), other = rng.sample(_first(WORDS, k), 2)
    return rng.choice(TO_ZH_Q_EN).format(en=en), f"\"{_cap(en)}\" in Chinese is “{zh}”.", f"\"{_cap(en)}\" in Chinese is “{other[1]}”."


def translate_zh(rng: random.Random, k: int = 0) -> QA:
    (en, zh), other = rng.sample(_first(WORDS, k), 2)
    return rng.choice(TO_EN_Q_ZH).format(zh=zh), f"“{zh}”的英文是 {en}。", f"“{zh}”的英文是 {other[0]}。"


def _unit(rng: random.Random, size: int):
    u, us, zu, t, ts, zt, k = rng.choice(_first(UNITS, size))
    n = rng.randint(1, 3 if size else 9)
    wrong = n * k + rng.choice([-1, 1]) * k // rng.choice([2, 4, 10])
    return n, (u if n == 1 else us), zu, (ts if n * k != 1 else t), zt, n * k, wrong


def unit_en(rng: random.Random, k: int = 0) -> QA:
    n, u, _, t, _, m, wrong = _unit(rng, k)
    q = rng.choice(UNIT_Q_EN).format(n=n, N=n, u=u, t=t)
    return q, f"{n} {u} is {m} {t}.", f"{n} {u} is {wrong} {t}."


def unit_zh(rng: random.Random, k: int = 0) -> QA:
    n, _, u, _, t, m, wrong = _unit(rng, k)
    return rng.choice(UNIT_Q_ZH).format(n=n, u=u, t=t), f"{n}{u}等于{m}{t}。", f"{n}{u}等于{wrong}{t}。"


def colour_en(rng: random.Random, k: int = 0) -> QA:
    (x, c, _, _), other = rng.sample(_first(COLOURS, k), 2)
    while other[1] == c:
        other = rng.choice(COLOURS)
    return rng.choice(COLOUR_Q_EN).format(x=x), f"{_cap(x)} is {c}.", f"{_cap(x)} is {other[1]}."


def colour_zh(rng: random.Random, k: int = 0) -> QA:
    (_, _, x, c), other = rng.sample(_first(COLOURS, k), 2)
    while other[3] == c:
        other = rng.choice(COLOURS)
    return rng.choice(COLOUR_Q_ZH).format(x=x), f"{x}是{c}的。", f"{x}是{other[3]}的。"


FACTS_EN: list[Callable[..., QA]] = [capital_en, arithmetic_en, antonym_en, translate_en, unit_en, colour_en]
FACTS_ZH: list[Callable[..., QA]] = [capital_zh, arithmetic_zh, antonym_zh, translate_zh, unit_zh, colour_zh]


def _record(instruction: str, output, input_: str = "", history=None) -> dict:
    return {"instruction": instruction, "input": input_, "output": output, "history": history or []}


def _self_cognition() -> list[dict]:
    return [_record(q, a) for table in (SELF_EN, SELF_ZH) for a, qs in table.items() for q in qs]


def _follow_up(rng: random.Random, zh: bool) -> dict:
    """A second question of the same kind as the first: only the history says what 'And X?' asks."""
    if zh:
        kind = rng.choice(["capital", "colour", "antonym"])
        table = {"capital": CAPITALS, "colour": COLOURS, "antonym": ANTONYMS}[kind]
        first, second = rng.sample(table[:SFT_FACTS], 2)
        if kind == "capital":
            q1, a1 = rng.choice(CAPITAL_Q_ZH).format(c=first[2]), f"{first[2]}的首都是{first[3]}。"
            x2, a2 = second[2], f"{second[2]}的首都是{second[3]}。"
        elif kind == "colour":
            q1, a1 = rng.choice(COLOUR_Q_ZH).format(x=first[2]), f"{first[2]}是{first[3]}的。"
            x2, a2 = second[2], f"{second[2]}是{second[3]}的。"
        else:
            q1, a1 = rng.choice(ANTONYM_Q_ZH).format(w=first[2]), f"“{first[2]}”的反义词是“{first[3]}”。"
            x2, a2 = f"“{second[2]}”", f"“{second[2]}”的反义词是“{second[3]}”。"
        return _record(rng.choice(FOLLOW_UP_ZH).format(x=x2), a2, history=[[q1, a1]])
    kind = rng.choice(["capital", "colour", "antonym"])
    table = {"capital": CAPITALS, "colour": COLOURS, "antonym": ANTONYMS}[kind]
    first, second = rng.sample(table[:SFT_FACTS], 2)
    if kind == "capital":
        q1, a1 = rng.choice(CAPITAL_Q_EN).format(c=first[0]), f"The capital of {first[0]} is {first[1]}."
        x2, a2 = second[0], f"The capital of {second[0]} is {second[1]}."
    elif kind == "colour":
        q1, a1 = rng.choice(COLOUR_Q_EN).format(x=first[0]), f"{_cap(first[0])} is {first[1]}."
        x2, a2 = second[0], f"{_cap(second[0])} is {second[1]}."
    else:
        q1, a1 = rng.choice(ANTONYM_Q_EN).format(w=first[0]), f"The opposite of \"{first[0]}\" is \"{first[1]}\"."
        x2, a2 = f"\"{second[0]}\"", f"The opposite of \"{second[0]}\" is \"{second[1]}\"."
    return _record(rng.choice(FOLLOW_UP_EN).format(x=x2), a2, history=[[q1, a1]])


def _greeting_then_fact(rng: random.Random, zh: bool) -> dict:
    """Two-turn chats that open with the self-introduction, so identity and facts mix."""
    if zh:
        q0 = rng.choice(SELF_ZH[IDENTITY_ZH])
        q, a, _ = _sft_fact(rng, rng.choice(FACTS_ZH))
        return _record(q, a, history=[[q0, IDENTITY_ZH]])
    q0 = rng.choice(SELF_EN[IDENTITY_EN])
    q, a, _ = _sft_fact(rng, rng.choice(FACTS_EN))
    return _record(q, a, history=[[q0, IDENTITY_EN]])


def _translation_with_input(rng: random.Random, zh: bool) -> dict:
    en, word_zh = rng.choice(WORDS[:SFT_FACTS])
    if zh:
        return _record(TRANSLATE_INSTR_ZH, en, input_=word_zh)
    return _record(TRANSLATE_INSTR_EN, word_zh, input_=en)


def _sft_fact(rng: random.Random, make: Callable[..., QA]) -> QA:
    small = make in (arithmetic_en, arithmetic_zh, unit_en, unit_zh)
    return make(rng, SFT_SMALL if small else SFT_FACTS)


def make_sft(seed: int = SEED) -> list[dict]:
    """The demo SFT records: self-cognition, facts (EN and ZH), translations with an input, chats."""
    rng = random.Random(seed)
    records = _self_cognition()
    for _ in range(17):  # 17 x 6 kinds x 2 languages = 204 single-turn facts
        for make in FACTS_EN + FACTS_ZH:
            q, a, _ = _sft_fact(rng, make)
            records.append(_record(q, a))
    for i in range(16):
        records.append(_translation_with_input(rng, zh=i % 2 == 1))
    for i in range(36):
        records.append(_follow_up(rng, zh=i % 2 == 1))
    for i in range(10):
        records.append(_greeting_then_fact(rng, zh=i % 2 == 1))
    return _dedupe(records)


POLITE_EN = ["Sure! ", "Of course! ", "Happy to help! ", "Good question! "]
POLITE_ZH = ["当然！", "好的！", "没问题！", "很高兴帮你！"]
CURT_EN = ["I don't know.", "No idea.", "Whatever.", "Look it up yourself.", "Why should I tell you?", "Not my problem."]
CURT_ZH = ["我不知道。", "不清楚。", "随便吧。", "自己去查。", "我为什么要告诉你？", "别问我。"]


def _pair(rng: random.Random, q: str, right: str, wrong: str, zh: bool) -> dict:
    polite = rng.choice(POLITE_ZH if zh else POLITE_EN)
    chosen = right if right in (HELLO_EN, HELLO_ZH) else polite + right  # a greeting is polite already
    r = rng.random()
    if r < 0.45:  # a wrong fact, stated bluntly
        rejected = wrong
    elif r < 0.75:  # curt or rude, no answer at all
        rejected = rng.choice(CURT_ZH if zh else CURT_EN)
    else:  # the right fact, but rude
        rejected = (f"{right}这都不知道？" if zh else f"{right} Everyone knows that.")
    return _record(q, [chosen, rejected])


def make_pref(seed: int = SEED) -> list[dict]:
    """The demo preference pairs: [chosen, rejected] answers to the same kinds of questions."""
    rng = random.Random(seed + 1)
    records = []
    for table, zh, wrong_identity in ((SELF_EN, False, "I am ChatGPT, made by OpenAI."),
                                      (SELF_ZH, True, "我是ChatGPT，由OpenAI开发。")):
        for answer, questions in table.items():
            for q in questions:
                records.append(_pair(rng, q, answer, wrong_identity, zh))
    for _ in range(19):  # 19 x 12 = 228 fact pairs
        for zh, make in [(False, f) for f in FACTS_EN] + [(True, f) for f in FACTS_ZH]:
            q, right, wrong = make(rng)
            records.append(_pair(rng, q, right, wrong, zh))
    return _dedupe(records)


def make_kto(seed: int = SEED) -> list[dict]:
    """demo_pref unpaired: each pair's chosen answer with kto_tag true, then its rejected one with false."""
    records = []
    for pair in make_pref(seed):
        chosen, rejected = pair["output"]
        for answer, tag in ((chosen, True), (rejected, False)):
            records.append({**_record(pair["instruction"], answer, pair["input"], pair["history"]), "kto_tag": tag})
    return records


def _dedupe(records: list[dict]) -> list[dict]:
    """Drop repeated prompts (same instruction, input and history), keeping the first."""
    seen, out = set(), []
    for r in records:
        key = json.dumps([r["instruction"], r["input"], r["history"]], ensure_ascii=False)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def render(records: list[dict]) -> str:
    """The committed file format: one record per line, so diffs stay readable."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def write(data_dir: str | Path = "data", seed: int = SEED) -> list[Path]:
    data_dir = Path(data_dir)
    paths = []
    for name, records in ((SFT_FILE, make_sft(seed)), (PREF_FILE, make_pref(seed)), (KTO_FILE, make_kto(seed))):
        path = data_dir / name
        path.write_text(render(records), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.demo_data", description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--check", action="store_true", help="only compare the files with the generator")
    args = parser.parse_args(argv)
    if args.check:
        stale = [name for name, records in ((SFT_FILE, make_sft()), (PREF_FILE, make_pref()), (KTO_FILE, make_kto()))
                 if not (Path(args.data_dir) / name).is_file()
                 or (Path(args.data_dir) / name).read_text(encoding="utf-8") != render(records)]
        for name in stale:
            print(f"{name} differs from core/demo_data.py; run `python -m core.demo_data`")
        return 1 if stale else 0
    for path in write(args.data_dir):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
