"""The keyframes asset: per scene, the image an image-to-video model starts from."""

from dagster import AssetExecutionContext, MetadataValue, Output, asset

from vidgen_pipeline.assets.partitioned import (
    BACKFILL_POLICY,
    MEDIA_GROUP,
    RETRY_POLICY,
    add_metadata,
    each_partition,
    user_errors_are_final,
)
from vidgen_pipeline.core.previews import contact_sheet, markdown_image
from vidgen_pipeline.partitions import prompts_partitions
from vidgen_pipeline.resources import KeyframeGenerator


@asset(
    partitions_def=prompts_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=MEDIA_GROUP,
    kinds={"python", "png"},
    io_manager_key="frames_io_manager",
    pool="gpu",
)
def keyframes(
    context: AssetExecutionContext,
    script,
    optimized_prompts,
    keyframe_generator: KeyframeGenerator,
) -> Output[dict]:
    """Per scene, the image an image-to-video model starts from (and the animatic pans over).

    Made by a text-to-image model; without one, labelled storyboard cards that say so. A
    text-to-video model needs none (the asset is then empty). The model loads once per run,
    whatever the number of prompts in it.
    """
    results = {}
    try:
        for key, log, (board, prompts) in each_partition(context, script, optimized_prompts):
            plan = prompts.video
            images = user_errors_are_final(
                lambda b=board, p=prompts, lg=log: keyframe_generator.make(b, p, log=lg)
            )
            results[key] = images
            metadata = {
                "source": plan.keyframe_model,
                "count": len(images),
                "size": f"{plan.width}x{plan.height}",
            }
            user = [k.info for k in images if k.info.get("source") == "user image"]
            if user:  # the user's image, and how it was fitted to the video's size
                metadata["user_image"] = user[0]["image"]
                metadata["fitted"] = user[0].get("fitted", "used as it was")
            if images:
                sheet = contact_sheet([k.image for k in images])
                metadata["contact_sheet"] = MetadataValue.md(
                    markdown_image(sheet, "keyframes", max_width=480)
                )
            add_metadata(context, key, metadata)
    finally:
        keyframe_generator.release()  # the video model needs the memory next
    return Output(results)
