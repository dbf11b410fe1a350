"""Row formats that TRL, verl and OpenRLHF read unchanged. Pure frame-to-frame conversions."""

from __future__ import annotations

import polars as pl

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})


def _user_turn(df: pl.DataFrame, system_prompt: str | None) -> list[pl.Expr]:
    turns = []
    if system_prompt:
        turns.append(pl.struct(pl.lit("system").alias("role"), pl.lit(system_prompt).alias("content")))
    turns.append(pl.struct(pl.lit("user").alias("role"), pl.col("prompt").alias("content")))
    return turns


def _meta(df: pl.DataFrame) -> list[pl.Expr]:
    ckpt = pl.col("checkpoint") if "checkpoint" in df.columns else pl.lit(None, pl.String)
    return [
        pl.col("sample_id"),
        pl.col("prompt_id"),
        pl.col("task"),
        ckpt.alias("checkpoint"),
        pl.col("response").str.len_chars().cast(pl.Int64).alias("response_chars"),
    ]


def to_messages(df: pl.DataFrame, system_prompt: str | None = None) -> pl.DataFrame:
    """``messages``: [system?, user, assistant] (TRL conversational SFT, OpenRLHF ``input_key=messages``)."""
    assistant = pl.struct(pl.lit("assistant").alias("role"), pl.col("response").alias("content"))
    return df.select(pl.concat_list([*_user_turn(df, system_prompt), assistant]).alias("messages"), *_meta(df))


def to_prompt_completion(df: pl.DataFrame, system_prompt: str | None = None) -> pl.DataFrame:
    """Conversational ``prompt`` / ``completion`` (TRL prompt-completion SFT: loss on the completion only)."""
    assistant = pl.struct(pl.lit("assistant").alias("role"), pl.col("response").alias("content"))
    return df.select(
        pl.concat_list(_user_turn(df, system_prompt)).alias("prompt"),
        pl.concat_list([assistant]).alias("completion"),
        *_meta(df),
    )


def to_verl(df: pl.DataFrame, system_prompt: str | None = None, split: str = "train") -> pl.DataFrame:
    """verl's RL dataset rows: data_source, prompt (messages), ability, reward_model, extra_info."""

    def opt(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in df.columns else pl.lit(None, dtype)

    return df.select(
        pl.format("curate/{}", pl.col("task")).alias("data_source"),
        pl.concat_list(_user_turn(df, system_prompt)).alias("prompt"),
        pl.col("task").alias("ability"),
        pl.struct(pl.lit("rule").alias("style"), pl.col("reference").fill_null("").alias("ground_truth")).alias(
            "reward_model"
        ),
        pl.struct(
            pl.lit(split).alias("split"),
            pl.int_range(pl.len(), dtype=pl.Int64).alias("index"),
            pl.col("prompt_id"),
            opt("pass_rate", pl.Float64()).alias("pass_rate"),
            opt("n", pl.Int64()).alias("n"),
            (1.0 - opt("pass_rate", pl.Float64())).alias("difficulty"),
            opt("tests", pl.String()).alias("tests"),
            opt("entry_point", pl.String()).alias("entry_point"),
            opt("test_setup", pl.String()).alias("test_setup"),
        ).alias("extra_info"),
    )


def to_openrlhf_jsonl(df: pl.DataFrame) -> bytes:
    """OpenRLHF JSONL: ``messages`` rows for SFT; ``prompt`` (messages) + ``label`` rows for RL prompts."""
    if "messages" in df.columns:
        out = df.select("messages")
    elif "reward_model" in df.columns:
        out = df.select(
            pl.col("prompt"), pl.col("reward_model").struct.field("ground_truth").alias("label"), pl.col("data_source")
        )
    else:
        out = df.select(pl.col("prompt"), pl.col("completion"))
    buf = out.write_ndjson()
    return buf.encode() if isinstance(buf, str) else buf


# Which table schemas each trainer format can be built from (a dataset's schema is in its manifest).
OPENRLHF_SCHEMAS = ("sft_messages", "sft_prompt_completion", "rl_prompt")


def openrlhf_supports(schema_tag: str) -> bool:
    return schema_tag.split("@", 1)[0] in OPENRLHF_SCHEMAS
