"""The one set of made-up credentials the tests and the benchmarks run with (the sandbox's are in wxconfig)."""

APPID = "wx1234567890abcdef"
SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "testtoken"
# The EncodingAESKey of docs/wechat-protocol.md §3.7's test vector.
AES_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
COOKIE_SECRET = "test-cookie-secret-0123456789abcdef-0123456789"
ORIGINAL_ID = "gh_123456789abc"
# A follower's phone: WeChat's in-app browser on Android (docs/wechat-protocol.md §17).
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
             "Mobile Safari/537.36 XWEB/1340129 MMWEBSDK/20240301 MicroMessenger/8.0.48.2580(0x28003036) "
             "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64")
DESKTOP_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0 Safari/537.36")
