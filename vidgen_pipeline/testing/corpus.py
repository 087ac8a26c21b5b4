"""The little English and Chinese texts the tiny tokenizers are trained on.

Prompts in ``PROMPTS`` (the CLIP, T5 and Gemma tokenizers) and chat turns and scripts in ``CHAT``
(the chat LLM's Qwen2-style tokenizer). Changing a text changes nothing until a tokenizer is
regenerated on purpose: the builders load the committed tokenizer files.
"""

PROMPTS = """
A red fox trots through fresh snow at dawn. It stops and looks straight at the camera.
The camera zooms out over the silent forest. A lighthouse stands on a rocky cliff while
waves crash below and seagulls circle in the grey sky. An astronaut floats inside a space
station, watching the blue planet turn slowly beneath the window. A cat sleeps on a sunny
windowsill; its tail twitches as a butterfly lands on the glass. Rain falls on a busy city
street at night, neon signs reflect in the puddles, and people hurry past with umbrellas.
A chef slices vegetables in a bright kitchen, steam rising from a pot of soup. Children fly
colourful kites on a windy hill in spring. A slow drone shot glides over green rice terraces
and misty mountains. An old train crosses a stone bridge above a deep river valley.
A golden retriever runs along the beach, chasing a ball into the waves. Fireworks burst over
the harbour and their light shimmers on the water. A painter mixes blue and yellow on a
palette, then brushes a wide stroke across the canvas. Autumn leaves drift down onto a quiet
park bench. A hot air balloon rises above the desert at sunrise. A robot walks carefully
through an abandoned factory, its lamps sweeping across rusty machines. A girl reads a book
under a tree while petals fall around her. Cinematic, photorealistic, soft lighting, close up,
wide angle, slow motion, high quality, detailed, 4k, film grain, warm colours, dramatic clouds.
The storm passes and a rainbow appears over the wet fields. Horses gallop across the prairie.
A small boat drifts on a calm lake surrounded by pine trees. Lanterns float into the night sky.
The scene fades to black. Scene one, scene two, scene three: the story continues tomorrow.
Jellyfish glow in the dark ocean. A waterfall pours into a turquoise pool in the jungle.
Snowflakes swirl around a street lamp. A squirrel eats a burger on a wooden table.
一只红色的狐狸在黎明时分穿过新雪。它停下来，直视镜头。镜头拉远，俯瞰寂静的森林。
灯塔矗立在岩石悬崖上，海浪在下面拍打，海鸥在灰色的天空中盘旋。宇航员漂浮在空间站里，
看着蓝色的星球在窗下缓缓转动。一只猫在阳光明媚的窗台上睡觉。夜晚的城市街道下着雨，
霓虹灯倒映在水坑里，人们撑着雨伞匆匆走过。厨师在明亮的厨房里切菜，汤锅冒着热气。
孩子们在春天有风的山坡上放五颜六色的风筝。无人机缓缓飞过绿色的梯田和雾气缭绕的群山。
一列老火车穿过深谷上方的石桥。金毛犬沿着海滩奔跑，追着球冲进海浪。烟花在港口上空绽放。
秋天的落叶飘落在安静的公园长椅上。热气球在日出时升上沙漠上空。机器人小心地走过废弃的工厂。
女孩在树下看书，花瓣在她身边飘落。电影感，写实，柔和的光线，特写，广角，慢动作，高质量。
暴风雨过去了，湿润的田野上出现了一道彩虹。马群在草原上奔驰。灯笼飘向夜空。画面渐渐变黑。
"""

CHAT = """
You are a helpful assistant. You write short video scripts: a title, then a list of scenes.
Each scene has a prompt for the image model, a duration in seconds and a line of narration.
Write a story about a red fox that crosses a frozen river at dawn. Keep it under one minute.
Title: The Fox and the River. Scene 1: A red fox trots through fresh snow at dawn; it stops
and looks straight at the camera. Scene 2: The camera zooms out over the silent forest and the
frozen river. Scene 3: The fox steps carefully onto the ice, which cracks under its paws.
Scene 4: It jumps to the far bank as the sun rises over the mountains. The end.
Sure! Here is a script with three scenes. Of course, I can make it longer or shorter. Would you
like a happy ending or a sad one? Please tell me the style you prefer: cinematic, cartoon,
watercolour, documentary, anime, photorealistic, black and white, or vintage film.
A lighthouse stands on a rocky cliff while waves crash below and seagulls circle in the grey
sky. An astronaut floats inside a space station, watching the blue planet turn slowly beneath
the window. A cat sleeps on a sunny windowsill; its tail twitches as a butterfly lands on the
glass. Rain falls on a busy city street at night, neon signs reflect in the puddles, and people
hurry past with umbrellas. A chef slices vegetables in a bright kitchen, steam rising from a pot
of soup. Children fly colourful kites on a windy hill in spring. A slow drone shot glides over
green rice terraces and misty mountains. An old train crosses a stone bridge above a deep river
valley. A golden retriever runs along the beach, chasing a ball into the waves. Fireworks burst
over the harbour and their light shimmers on the water. A painter mixes blue and yellow on a
palette, then brushes a wide stroke across the canvas. Autumn leaves drift down onto a quiet
park bench. A hot air balloon rises above the desert at sunrise. A robot walks carefully through
an abandoned factory, its lamps sweeping across rusty machines. A girl reads a book under a tree
while petals fall around her. The storm passes and a rainbow appears over the wet fields.
Horses gallop across the prairie. A small boat drifts on a calm lake surrounded by pine trees.
Lanterns float into the night sky. The scene fades to black. Jellyfish glow in the dark ocean.
A waterfall pours into a turquoise pool in the jungle. Snowflakes swirl around a street lamp.
Once upon a time there was a little dragon who was afraid of the dark. Every evening he hid
in his cave and waited for the morning. One day a firefly came to visit him and said: "Do not
be afraid, I will light the way." Together they flew over the village, the fields and the sea,
and the dragon learned that the night is full of stars. From then on he was never afraid again.
The old clockmaker opened his shop every morning at seven. He repaired watches for the whole
town, and he knew everybody's secrets by the sound of their clocks. When the great bell in the
tower stopped, the mayor came to ask for his help, and the clockmaker climbed the stairs with
his little box of tools. What he found at the top changed the town forever.
{"title": "Spring in the Mountains", "scenes": [{"prompt": "misty mountains at sunrise, cherry
blossoms", "duration": 4.0, "narration": "Spring arrives quietly."}, {"prompt": "a river full of
melting snow", "duration": 3.5, "narration": "The rivers wake up."}]}
Camera: wide shot, close up, medium shot, over the shoulder, tracking shot, aerial view, pan
left, pan right, tilt up, tilt down, dolly in, dolly out, handheld, time lapse, slow motion.
Lighting: golden hour, blue hour, soft light, hard light, backlight, rim light, candle light,
moonlight, neon, overcast, high contrast, low key, volumetric fog, god rays, warm, cold.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 12 15 20 24 25 30 60 100 2024 3.5 4.0 1080p 720p 4k 16:9 9:16.
你是一个乐于助人的助手。你负责写短视频脚本：先写标题，然后列出每一个场景。
每个场景包括给图像模型的提示词、以秒为单位的时长和一句旁白。
写一个故事：一只红色的狐狸在黎明时分穿过结冰的河流。请控制在一分钟以内。
标题：狐狸与河流。场景一：一只红色的狐狸在黎明时分穿过新雪，它停下来，直视镜头。
场景二：镜头拉远，俯瞰寂静的森林和结冰的河流。场景三：狐狸小心地踏上冰面，冰在它的脚下裂开。
场景四：太阳从山后升起，狐狸跳到了对岸。故事结束。
好的！下面是一个有三个场景的脚本。当然，我也可以把它写得更长或者更短。
你想要一个快乐的结局还是一个悲伤的结局？请告诉我你喜欢的风格：电影感、卡通、水彩、纪录片、动画、写实、黑白或者复古胶片。
灯塔矗立在岩石悬崖上，海浪在下面拍打，海鸥在灰色的天空中盘旋。宇航员漂浮在空间站里，
看着蓝色的星球在窗下缓缓转动。一只猫在阳光明媚的窗台上睡觉，一只蝴蝶落在玻璃上，它的尾巴轻轻抖动。
夜晚的城市街道下着雨，霓虹灯倒映在水坑里，人们撑着雨伞匆匆走过。厨师在明亮的厨房里切菜，汤锅冒着热气。
孩子们在春天有风的山坡上放五颜六色的风筝。无人机缓缓飞过绿色的梯田和雾气缭绕的群山。
一列老火车穿过深谷上方的石桥。金毛犬沿着海滩奔跑，追着球冲进海浪。烟花在港口上空绽放，光芒在水面上闪烁。
画家在调色板上调和蓝色和黄色，然后在画布上画下宽宽的一笔。秋天的落叶飘落在安静的公园长椅上。
热气球在日出时升上沙漠上空。机器人小心地走过废弃的工厂，灯光扫过生锈的机器。女孩在树下看书，花瓣在她身边飘落。
暴风雨过去了，湿润的田野上出现了一道彩虹。马群在草原上奔驰。一条小船漂在松树环绕的平静湖面上。
灯笼飘向夜空。画面渐渐变黑。水母在黑暗的海洋中发光。瀑布倾泻进丛林里碧绿的水潭。雪花围着路灯飞舞。
从前有一条小龙，它很怕黑。每天晚上它都躲在山洞里，等待天亮。有一天，一只萤火虫来看它，说：
“不要害怕，我来给你照亮道路。”它们一起飞过村庄、田野和大海，小龙发现夜晚满是星星。从那以后，它再也不怕黑了。
老钟表匠每天早上七点开门。他为全镇的人修理手表，听钟表的声音就知道每个人的秘密。
钟楼上的大钟停了，镇长来请他帮忙，钟表匠带着他的小工具箱爬上了楼梯。他在顶上发现的东西永远地改变了这个小镇。
{"标题": "山中的春天", "场景": [{"提示词": "日出时雾气缭绕的群山，樱花盛开", "时长": 4.0, "旁白": "春天悄悄地来了。"},
{"提示词": "一条满是融雪的河流", "时长": 3.5, "旁白": "河流醒来了。"}]}
镜头：远景、特写、中景、过肩镜头、跟拍、航拍、向左摇、向右摇、向上仰、向下俯、推镜头、拉镜头、手持、延时摄影、慢动作。
光线：黄金时刻、蓝调时刻、柔光、硬光、逆光、轮廓光、烛光、月光、霓虹、阴天、高对比度、低调、体积雾、丁达尔光、暖色、冷色。
"""
