// "Check in the public log" on the parent's applications page: the proofs of GET /waitlist/log/mine checked on
// this device by tlog.js (WebCrypto only) against the log's key from GET /waitlist/log/keys, so the parent need
// not trust this server's word for their entries or their rank. Without JavaScript the section says how to check.
import { checkMine } from "/static/tlog.js";

const section = document.getElementById("log-check");
if (section) {
  const button = section.querySelector("button");
  const out = section.querySelector("[data-result]");
  const say = (template, values) => Object.entries(values)
    .reduce((text, [k, v]) => text.replaceAll(`{${k}}`, String(v)), template);
  button.hidden = false;
  button.addEventListener("click", async () => {
    out.textContent = section.dataset.checking;
    try {
      const get = async (url) => {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return response.json();
      };
      const [mine, keys] = await Promise.all([get("/waitlist/log/mine"), get("/waitlist/log/keys")]);
      const result = await checkMine(mine, keys.log[0]);
      const total = result.events.length;
      const verified = result.events.filter((e) => e.verified).length;
      const pending = result.events.filter((e) => e.index === null).length;
      const failed = total - verified - pending;
      for (const e of result.events) {
        if (e.rank === undefined || !e.verified) continue;
        const slot = document.querySelector(`[data-log-rank="${CSS.escape(e.rank_of)}"]`);
        if (slot) slot.textContent = say(section.dataset.rank, { rank: e.rank });
      }
      out.textContent = say(failed ? section.dataset.failed : section.dataset.ok,
        { verified, total, pending, failed, size: result.checkpoint.size });
      out.classList.toggle("bad", failed > 0);
    } catch (error) {
      out.textContent = say(section.dataset.error, { error: error.message });
      out.classList.add("bad");
    }
  });
}
