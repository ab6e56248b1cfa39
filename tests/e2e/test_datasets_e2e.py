"""The Datasets tab in a real browser: uploads whose columns have Chinese names map by themselves,
refusals speak of the tab's own boxes and the user's file, and the preview shows Chinese whole."""

from __future__ import annotations

import csv
import json

import pytest

from core.data.registry import add_dataset
from tests.e2e.test_webui_e2e import read_value, set_value, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The demo tokenizer splits 家, 爱, 安 and 门 into byte pieces (decoded alone, each is U+FFFD).
ZH_PROMPT = "请把这个国家翻译成英文：我爱北京天安门。"
ZH_ANSWER = "I love Tiananmen in Beijing."


def text_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def upload(page, path) -> None:
    page.locator("#data-file input[type=file]").set_input_files(str(path))


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_an_upload_with_chinese_column_names_maps_itself_and_registers(page, app, tmp_path, suffix):
    rows = [{"问题": f"第 {i} 个问题：{ZH_PROMPT}", "补充": "上下文" if i % 2 else "", "答案": f"答案 {i}"} for i in range(12)]
    path = tmp_path / f"中文问答.{suffix}"
    if suffix == "csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["问题", "补充", "答案"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    page.get_by_role("tab", name="Datasets").click()
    upload(page, path)
    page.wait_for_function("() => document.querySelector('#data-detected').innerText.includes('问题')")
    wait_until(page, lambda: read_value(page, "data-col-prompt") == "问题", 30, "the proposed prompt column",
               status=lambda p: text_of(p, "data-detected"))
    assert read_value(page, "data-col-query") == "补充"
    assert read_value(page, "data-col-response") == "答案"
    name = f"zh_upload_{suffix}"
    set_value(page, "data-name", name)
    page.locator("#data-register").click()
    page.wait_for_function(f"() => document.querySelector('#data-table').innerText.includes('{name}')")
    info = json.loads((app.data / "dataset_info.json").read_text(encoding="utf-8"))
    assert info[name]["columns"] == {"prompt": "问题", "query": "补充", "response": "答案"}


def test_a_refused_upload_counts_every_bad_record_and_names_the_file_and_the_box(page, app, tmp_path):
    path = tmp_path / "没有答案.jsonl"
    path.write_text("".join(json.dumps({"问题": f"问题 {i}"}, ensure_ascii=False) + "\n" for i in range(30)),
                    encoding="utf-8")
    page.get_by_role("tab", name="Datasets").click()
    upload(page, path)
    wait_until(page, lambda: read_value(page, "data-col-prompt") == "问题", 30, "the proposed prompt column",
               status=lambda p: text_of(p, "data-detected"))
    set_value(page, "data-name", "zh_no_answers")
    page.locator("#data-register").click()
    page.wait_for_function("() => document.querySelector('#data-errors').innerText.includes('Rejected')")
    errors = text_of(page, "data-errors")
    assert "Rejected: 30 of 30 records are invalid" in errors, errors
    assert "没有答案.jsonl: line 1 has no field 'output'" in errors
    assert "“Answer column (response)” box" in errors
    assert "/tmp" not in errors and "gradio" not in errors and "--columns" not in errors
    assert "zh_no_answers" not in json.loads((app.data / "dataset_info.json").read_text(encoding="utf-8"))


def test_the_preview_shows_chinese_text_whole(page, app, tmp_path):
    src = tmp_path / "zh_preview.jsonl"
    src.write_text(json.dumps({"instruction": ZH_PROMPT, "output": ZH_ANSWER}, ensure_ascii=False) + "\n", encoding="utf-8")
    add_dataset(app.data, "zh_preview", src)  # the app reads the registry from disk on refresh
    page.get_by_role("tab", name="Datasets").click()
    page.locator("#data-refresh").click()
    page.locator("#data-preview-box").get_by_text("Preview", exact=True).first.click()
    pick = page.locator("#data-preview-pick input").first
    pick.click()
    page.locator("#data-preview-pick").get_by_role("option", name="zh_preview", exact=True).click()
    page.locator("#data-preview-run").click()
    wait_until(page, lambda: "天安门" in text_of(page, "data-preview-html"), 120, "the previewed record",
               status=lambda p: text_of(p, "data-preview-stats"))
    shown = text_of(page, "data-preview-html")
    assert "\ufffd" not in shown, shown
    assert ZH_PROMPT in shown and ZH_ANSWER in shown
    # the prompt is shown masked and the answer trained, each decoded as one run of tokens
    masked = page.locator("#data-preview-html .tf-token-masked").all_inner_texts()
    trained = page.locator("#data-preview-html .tf-token-trained").all_inner_texts()
    assert any(ZH_PROMPT in text for text in masked) and any(ZH_ANSWER in text for text in trained)
