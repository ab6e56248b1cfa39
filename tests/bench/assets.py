"""Deterministically build the benchmark assets (tiny LLaMA + synthetic SFT data).

Usage:  python -m tests.bench.assets OUT_DIR [--seed 1234]     (tests/bench/train_speed.py calls `build`)

Creates, fully offline and with fixed seeds:
  OUT_DIR/tiny-llama/             LlamaForCausalLM (hidden 256, inter 688, 4 layers, 8 heads,
                                  8 kv heads, max_pos 1024), random init, safetensors, plus a
                                  byte-level BPE tokenizer (~8000 vocab) trained on the data below,
                                  saved as a PreTrainedTokenizerFast (<s>, </s>, <unk>, <pad>).
  OUT_DIR/data/sft_bench.json     2000 alpaca records {instruction, input, output, history}
  OUT_DIR/data/dataset_info.json  registration of "sft_bench" (TuneForge and LLaMA-Factory read the same format)
  OUT_DIR/MANIFEST.json           sha256 of every file + dataset statistics

Needs only torch, transformers, tokenizers (any recent versions).  Weights are initialised by
this script itself (not by transformers' init code), so they do not depend on the transformers
version; the tokenizer and data depend only on `tokenizers` and Python's `random`.
"""

import argparse
import bisect
import hashlib
import json
import os
import random
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

N_RECORDS = 2000
N_HISTORY = 500  # exactly 25 % of the records carry 1-2 previous turns
N_CHINESE = 200  # exactly 10 % of the records are Chinese
N_WITH_INPUT = 800  # 40 % have a non-empty "input" field
VOCAB_SIZE = 8000
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0, 1, 2, 3

EN_COMMON = (
    "the of and to in is that for it as was with be by on not this are or from at which but have an "
    "they you were there been one all we their has would when if more no out so what up its about into "
    "than them can only other new some could time these two may then do first any now such like our over "
    "even most made after also did many before must through back years where much your way well down "
    "should because each just those people how too little good very make world still own see work long "
    "get here between both life being under never day same another know while last might great old year "
    "off come since against go came right used take three small large often usually always sometimes "
    "important simple clear useful careful quick slow early late high low strong light dark open close"
).split()
EN_TOPICS = (
    "river garden music history science kitchen weather computer network library mountain ocean city "
    "village school teacher student engine battery bridge forest desert planet rocket painting camera "
    "bicycle market bakery hospital museum theater language grammar algorithm database compiler keyboard "
    "telescope volcano glacier harvest orchard festival journey memory friendship economy energy climate "
    "recipe vitamin protein exercise sleep calendar holiday island harbor railway airport satellite robot "
    "puzzle chess poetry novel chapter theory experiment microscope molecule electricity magnet gravity"
).split()
EN_VERBS = (
    "explains describes builds changes moves helps shows carries finds keeps makes creates measures "
    "protects improves connects follows reaches supports grows opens uses needs brings turns starts"
).split()
ZH_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产"
    "种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从"
    "业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又"
    "么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位"
    "入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放"
    "决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受"
    "联什认六共权收证改清美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华"
    "名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容"
    "儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号"
    "率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红"
    "细引听该铁价严"
)
ZH_TOPICS = (
    "河流 花园 音乐 历史 科学 厨房 天气 电脑 网络 图书馆 高山 海洋 城市 乡村 学校 老师 学生 发动机 电池 桥梁 "
    "森林 沙漠 星球 火箭 绘画 相机 自行车 市场 医院 博物馆 语言 语法 算法 数据库 键盘 火山 冰川 节日 旅行 记忆 "
    "友谊 经济 能源 气候 食谱 运动 睡眠 假期 岛屿 铁路 机场 卫星 机器人 诗歌 小说 理论 实验 分子 电力 引力"
).split()

EN_INSTR = [
    "Explain {t} in simple terms.",
    "Write a short paragraph about {t} and {u}.",
    "Summarize the following text.",
    "List a few facts about {t}.",
    "Rewrite the following paragraph in a formal tone.",
    "What is the relationship between {t} and {u}?",
    "Give advice to someone who is learning about {t}.",
    "Describe a day at the {t}.",
    "Compare {t} with {u}.",
    "Continue the story below.",
    "Why is {t} important for {u}?",
    "Translate the idea of {t} into a short poem.",
]
ZH_INSTR = [
    "请用简单的话解释{t}。",
    "写一段关于{t}和{u}的短文。",
    "总结下面的文字。",
    "列出一些关于{t}的事实。",
    "比较{t}和{u}。",
    "为什么{t}对{u}很重要？",
    "描述一次去{t}的经历。",
    "继续写下面的故事。",
]


SYLLABLES = (
    "ba be bi bo bu ca co cu da de di do du fa fe fi fo ga ge go gu ha he hi ho ja jo ka ke ki ko la le li lo lu "
    "ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo wa we "
    "wi ya yo za ze zi zo an en in on un ar er or ur al el il ol st tr pr gr cl br th sh ch ng nd rt"
).split()


def make_pseudo_words(seed, n=4000):
    """A fixed lexicon of invented words, used with Zipf-like frequencies (realistic BPE stats)."""
    rng = random.Random(seed)
    seen, words = set(), []
    while len(words) < n:
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    cum, total = [], 0.0
    for rank in range(1, n + 1):
        total += 1.0 / rank
        cum.append(total)
    return words, cum


def en_sentence(rng, n_words):
    words = []
    for _ in range(n_words):
        r = rng.random()
        if r < 0.45:
            words.append(rng.choice(EN_COMMON))
        elif r < 0.65:
            words.append(rng.choice(EN_TOPICS))
        elif r < 0.77:
            words.append(rng.choice(EN_VERBS))
        elif r < 0.97:
            words.append(PSEUDO[bisect.bisect_left(PSEUDO_CUM, rng.random() * PSEUDO_CUM[-1])])
        else:
            words.append(str(rng.randint(0, 2024)))
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "!", "?", ";"])


def en_text(rng, n_words):
    """About n_words words, split into sentences of 4-16 words."""
    out, left = [], n_words
    while left > 0:
        k = min(left, rng.randint(4, 16))
        out.append(en_sentence(rng, k))
        left -= k
    return " ".join(out)


def zh_word(rng):
    if rng.random() < 0.2:
        return rng.choice(ZH_TOPICS)
    return "".join(rng.choice(ZH_CHARS) for _ in range(rng.randint(1, 3)))


def zh_text(rng, n_words):
    """n_words Chinese 'words' (1-3 characters each), sentences end with Chinese punctuation."""
    out, left = [], n_words
    while left > 0:
        k = min(left, rng.randint(4, 14))
        sent = "".join(zh_word(rng) for _ in range(k))
        if k > 6 and rng.random() < 0.5:
            cut = rng.randint(2, len(sent) - 2)
            sent = sent[:cut] + "，" + sent[cut:]
        out.append(sent + rng.choice(["。", "。", "。", "！", "？"]))
        left -= k
    return "".join(out)


def make_record(rng, zh, with_input, n_hist):
    text = zh_text if zh else en_text
    templates = ZH_INSTR if zh else EN_INSTR
    topics = ZH_TOPICS if zh else EN_TOPICS

    def instruction():
        t, u = rng.sample(topics, 2)
        return rng.choice(templates).format(t=t, u=u)

    history = []
    for _ in range(n_hist):
        history.append([instruction(), text(rng, rng.randint(10, 60))])
    return {
        "instruction": instruction(),
        "input": text(rng, rng.randint(10, 60)) if with_input else "",
        "output": text(rng, rng.randint(20, 200)),
        "history": history,
    }


PSEUDO, PSEUDO_CUM = [], []


def make_dataset(seed):
    global PSEUDO, PSEUDO_CUM
    PSEUDO, PSEUDO_CUM = make_pseudo_words(seed + 1)
    rng = random.Random(seed)
    idx = list(range(N_RECORDS))
    zh_set = set(rng.sample(idx, N_CHINESE))
    hist_set = set(rng.sample(idx, N_HISTORY))
    input_set = set(rng.sample(idx, N_WITH_INPUT))
    records = []
    for i in idx:
        n_hist = rng.choice([1, 2]) if i in hist_set else 0
        records.append(make_record(rng, i in zh_set, i in input_set, n_hist))
    return records


def iter_texts(records):
    for r in records:
        yield r["instruction"]
        if r["input"]:
            yield r["input"]
        yield r["output"]
        for q, a in r["history"]:
            yield q
            yield a


def build_tokenizer(records, out_dir):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(iter_texts(records), trainer=trainer)
    bos_id = tok.token_to_id("<s>")
    # LLaMA-like behaviour: encode(..., add_special_tokens=True) prepends <s>.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=1024,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    fast.save_pretrained(out_dir)
    # Make the folder loadable by transformers 4.x and 5.x alike: 5.x writes its internal
    # class name (TokenizersBackend), which 4.x does not know.
    cfg_path = os.path.join(out_dir, "tokenizer_config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
    return fast


def build_model(tokenizer, out_dir, seed):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.demo_model import seeded_init

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=1024,
        hidden_act="silu",
        rms_norm_eps=1e-6,
        initializer_range=0.02,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    seeded_init(model, seed, 0.02)  # the demo model's own init, so the weights hash the same on every version
    model.generation_config.do_sample = False
    model.save_pretrained(out_dir, safe_serialization=True)
    return model


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(out_dir, seed=1234):
    """Write the assets into out_dir; returns the manifest (also written as MANIFEST.json)."""
    out = os.path.abspath(out_dir)
    model_dir = os.path.join(out, "tiny-llama")
    data_dir = os.path.join(out, "data")
    os.makedirs(model_dir, exist_ok=True)
    os.makedirs(data_dir, exist_ok=True)

    records = make_dataset(seed)
    with open(os.path.join(data_dir, "sft_bench.json"), "w", encoding="utf-8") as f:
        json.dump(records, f, ensure_ascii=False, indent=1)
        f.write("\n")
    dataset_info = {
        "sft_bench": {
            "file_name": "sft_bench.json",
            "formatting": "alpaca",
            "columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"},
        }
    }
    with open(os.path.join(data_dir, "dataset_info.json"), "w", encoding="utf-8") as f:
        json.dump(dataset_info, f, ensure_ascii=False, indent=2)
        f.write("\n")

    tokenizer = build_tokenizer(records, model_dir)
    build_model(tokenizer, model_dir, seed)

    # sanity: reload offline exactly as a consumer would
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok2 = AutoTokenizer.from_pretrained(model_dir)
    model2 = AutoModelForCausalLM.from_pretrained(model_dir)
    n_params = sum(p.numel() for p in model2.parameters())
    sample = tok2("Hello world 你好")["input_ids"]
    assert sample[0] == tok2.bos_token_id, sample

    out_words = [len(r["output"].split()) for r in records if r["output"].isascii()]
    manifest = {
        "seed": seed,
        "records": len(records),
        "records_with_history": sum(1 for r in records if r["history"]),
        "records_with_input": sum(1 for r in records if r["input"]),
        "records_chinese": sum(1 for r in records if not r["output"].isascii()),
        "english_output_words_min_max": [min(out_words), max(out_words)],
        "vocab_size": len(tok2),
        "special_token_ids": {t: tok2.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS},
        "model_parameters": n_params,
        "files": {},
    }
    for root in (model_dir, data_dir):
        for name in sorted(os.listdir(root)):
            p = os.path.join(root, name)
            if os.path.isfile(p):
                manifest["files"][os.path.relpath(p, out)] = sha256(p)
    with open(os.path.join(out, "MANIFEST.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2)
        f.write("\n")
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.bench.assets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    json.dump(build(args.out_dir, args.seed), sys.stdout, ensure_ascii=False, indent=2)
    print()


if __name__ == "__main__":
    main()
