"""The dashboard through a real browser (Debian's chromium, driven by Selenium through Debian's
chromedriver), run inside the lab's client namespace: the admin's machine on the LAN. One
scenario, step by step; each step's outcome is one key of the JSON printed at the end (the
pytest side asserts them), and a screenshot of the Overview is saved.

usage: browser.py URL PASSWORD LIST_FILE BLOCKED_NAME NEW_NAME SCREENSHOT
"""
import json
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, PASSWORD, LIST_FILE, BLOCKED, NEW_NAME, SCREENSHOT = sys.argv[1:7]
results = {}


def dig(name):
    out = subprocess.run(["kdig", "+time=2", "+retry=0", "@10.53.2.53", name, "A"], capture_output=True, text=True).stdout
    return "NXDOMAIN" if "status: NXDOMAIN" in out else "NOERROR" if "status: NOERROR" in out else out[-200:]


def step(name, function):
    try:
        results[name] = function()
    except Exception as e:  # the step's failure is its result; the next steps still run
        results[name] = f"failed: {type(e).__name__}: {e}"


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
# No DNS from the browser itself (the page is addressed by IP): its background fetches would send
# queries for names outside the lab to the namespace's resolver.
for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 10.53.1.1", "--dns-prefetch-disable", "--disable-domain-reliability"]:
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 10)

try:
    # Log in.
    def login():
        driver.get(URL)
        wait.until(EC.url_contains("/login"))
        driver.find_element(By.ID, "password").send_keys("wrong password")
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: d.find_element(By.ID, "login-error").text)
        refused = driver.find_element(By.ID, "login-error").text
        field = driver.find_element(By.ID, "password")
        field.clear()
        field.send_keys(PASSWORD)
        driver.find_element(By.ID, "login-button").click()
        wait.until(EC.presence_of_element_located((By.ID, "live-table")))
        wait.until(lambda d: "live" in d.find_element(By.ID, "live-state").text)
        return {"refused": refused, "logged_in": True}
    step("login", login)

    # A query from the client appears on the Live page within 2 s.
    def live():
        name = "live-check.lab.test"
        sent = time.monotonic()
        dig(name)
        WebDriverWait(driver, 2.5, poll_frequency=0.05).until(
            lambda d: name in d.find_element(By.CSS_SELECTOR, "#live-table tbody").text)
        return {"seconds": round(time.monotonic() - sent, 2)}
    step("live", live)

    # A filter hides it: only blocked entries, then a blocked name shows and the allowed does not.
    def live_filter():
        Select(driver.find_element(By.CSS_SELECTOR, "#live-filters select[name=action]")).select_by_visible_text("blocked")
        driver.find_element(By.CSS_SELECTOR, "#live-filters button[type=submit]").click()
        wait.until(lambda d: "live" in d.find_element(By.ID, "live-state").text)
        time.sleep(0.3)
        dig("hidden-by-filter.lab.test")
        dig(BLOCKED)
        WebDriverWait(driver, 3, poll_frequency=0.05).until(lambda d: BLOCKED in d.find_element(By.CSS_SELECTOR, "#live-table tbody").text)
        text = driver.find_element(By.CSS_SELECTOR, "#live-table tbody").text
        return {"blocked_shown": BLOCKED in text, "allowed_hidden": "hidden-by-filter.lab.test" not in text and "live-check.lab.test" not in text}
    step("filter", live_filter)

    # Click the blocked row: Explain shows its list and line.
    def explain():
        row = driver.find_element(By.CSS_SELECTOR, "#live-table tbody tr")
        row.click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#explain-result .verdict"))
        wait.until(lambda d: "decided by" in d.find_element(By.ID, "explain-result").text)
        return driver.find_element(By.ID, "explain-result").text
    step("explain", explain)

    # Overview: the chart has points, the tables have rows; the screenshot for the README.
    def overview():
        driver.get(URL + "#overview")
        wait.until(lambda d: d.find_element(By.ID, "chart").get_attribute("data-points") not in (None, "", "0"))
        points = int(driver.find_element(By.ID, "chart").get_attribute("data-points"))
        servers = driver.find_element(By.ID, "top-servers").text
        hard_coded = len(driver.find_elements(By.CSS_SELECTOR, "#top-servers tr.hard-coded"))
        driver.save_screenshot(SCREENSHOT)
        return {"points": points, "servers": servers, "hard_coded_rows": hard_coded}
    step("overview", overview)

    # Pause for 30 s: the blocked name resolves; the bar says so; then blocking comes back.
    def pause():
        driver.get(URL + "#live")
        wait.until(lambda d: "live" in d.find_element(By.ID, "live-state").text)
        before = dig(BLOCKED)
        driver.find_element(By.CSS_SELECTOR, "button[data-pause='30']").click()
        wait.until(lambda d: "paused" in d.find_element(By.ID, "pause-state").text)
        bar = driver.find_element(By.ID, "pause-state").text
        time.sleep(0.5)
        during = dig(BLOCKED)
        # Resume by the button rather than waiting 30 s (the time-out is a unit of FilterSources).
        driver.find_element(By.ID, "resume").click()
        wait.until(lambda d: "on" in d.find_element(By.ID, "pause-state").text)
        time.sleep(0.5)
        after = dig(BLOCKED)
        return {"before": before, "bar": bar, "during": during, "after": after}
    step("pause", pause)

    # A list edit appears on Lists after Reload.
    def lists():
        driver.get(URL + "#lists")
        wait.until(lambda d: LIST_FILE in d.find_element(By.ID, "lists-table").text)
        before = driver.find_element(By.ID, "lists-table").text
        with open(LIST_FILE, "a") as f:
            f.write(f"||{NEW_NAME}^\n||bad..name^\n")
        driver.find_element(By.ID, "reload").click()
        WebDriverWait(driver, 6).until(lambda d: "is not a host name" in d.find_element(By.ID, "rejected").text)
        return {"before": before, "after": driver.find_element(By.ID, "lists-table").text,
                "rejected": driver.find_element(By.ID, "rejected").text, "new_name": dig(NEW_NAME)}
    step("lists", lists)
finally:
    driver.quit()

print(json.dumps(results))
