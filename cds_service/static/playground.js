/* The playground: build a hook request, POST it to the real CDS Hooks endpoint, show the cards the way
   an EHR does, and send real feedback. Plain JavaScript, no build step, no inline handlers (CSP). */
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("playground-config").textContent);
  const $ = (id) => document.getElementById(id);
  const INDICATOR_ORDER = { critical: 0, warning: 1, info: 2 };
  const INDICATOR_LABEL = { critical: "Critical", warning: "Warning", info: "Info" };
  const CHIP_LEVELS = config.levels.filter((l) => /^(T\d+|L\d)$/.test(l));
  const MAX_SHOWN_CHARS = 200000;
  let current = null; // {service, request, response}

  // ------------------------------------------------------------------ helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("data-")) node.setAttribute(name, value);
      else if (name in node) node[name] = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function showJson(id, value) {
    let text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    if (text.length > MAX_SHOWN_CHARS) {
      text = text.slice(0, MAX_SHOWN_CHARS) + `\n… (${text.length - MAX_SHOWN_CHARS} more characters not shown)`;
    }
    $(id).textContent = text;
  }

  function status(message, kind) {
    const node = $("call-status");
    node.textContent = message;
    node.className = "status" + (kind ? " " + kind : "");
  }

  function outcomeMessage(body, httpStatus) {
    const issue = body && Array.isArray(body.issue) ? body.issue[0] : null;
    const text = issue && (issue.diagnostics || (issue.details && issue.details.text));
    return `HTTP ${httpStatus}` + (text ? `: ${text}` : "");
  }

  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const raw = await response.text();
    let parsed = null;
    try {
      parsed = raw ? JSON.parse(raw) : null;
    } catch (error) {
      parsed = null;
    }
    return { status: response.status, ok: response.ok, body: parsed, raw };
  }

  function nowTimestamp() {
    return new Date().toISOString().replace(/\.\d+Z$/, "Z");
  }

  // Markdown as cards use it: paragraphs, "- " lists, **bold**, _italic_, `code`, [label](https://…).
  function escapeHtml(text) {
    return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function inlineMarkdown(escaped) {
    return escaped
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|[\s(])_([^_]+)_(?=[\s).,;:]|$)/g, "$1<em>$2</em>")
      .replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
  }

  function markdown(text) {
    const html = [];
    for (const block of escapeHtml(text).split(/\n{2,}/)) {
      let items = [];
      let lines = [];
      const flush = () => {
        if (lines.length) html.push("<p>" + lines.map(inlineMarkdown).join("<br>") + "</p>");
        if (items.length) html.push("<ul>" + items.map((item) => `<li>${inlineMarkdown(item)}</li>`).join("") + "</ul>");
        lines = [];
        items = [];
      };
      for (const line of block.split("\n")) {
        if (line.startsWith("- ")) {
          if (lines.length) flush();
          items.push(line.slice(2));
        } else {
          if (items.length) flush();
          lines.push(line);
        }
      }
      flush();
    }
    return html.join("");
  }

  // ------------------------------------------------------------------ patient

  function bundleText() {
    return $("bundle").value.trim();
  }

  function age(birthDate) {
    const born = new Date(birthDate);
    const today = new Date(config.today);
    let years = today.getFullYear() - born.getFullYear();
    const beforeBirthday =
      today.getMonth() < born.getMonth() || (today.getMonth() === born.getMonth() && today.getDate() < born.getDate());
    return beforeBirthday ? years - 1 : years;
  }

  function showBanner(patient) {
    const banner = $("patient-banner");
    banner.replaceChildren();
    if (!patient) {
      banner.hidden = true;
      return;
    }
    banner.append(el("strong", { class: "name", text: patient.name }));
    const facts = [];
    if (patient.gender) facts.push(patient.gender);
    if (patient.birthDate) facts.push(`born ${patient.birthDate} (${age(patient.birthDate)} y)`);
    facts.push(`id ${patient.id}`);
    banner.append(el("span", { class: "facts", text: facts.join(" · ") }));
    banner.hidden = false;
  }

  function bannerFromBundle(text) {
    try {
      const bundle = JSON.parse(text);
      const entry = (bundle.entry || []).find((e) => e.resource && e.resource.resourceType === "Patient");
      if (!entry) return null;
      const p = entry.resource;
      const name = (p.name && p.name[0]) || {};
      const full = [...(name.given || []), name.family || ""].join(" ").trim() || p.id;
      return { id: p.id, name: full, gender: p.gender, birthDate: p.birthDate };
    } catch (error) {
      return null;
    }
  }

  async function choosePatient(id) {
    clearResults();
    const patient = config.patients.find((p) => p.id === id);
    $("patient-story").textContent = patient ? patient.story : "";
    if (!patient) return;
    const response = await fetch(`/playground/api/patients/${encodeURIComponent(id)}`);
    const bundle = await response.json();
    $("bundle").value = JSON.stringify(bundle, null, 1);
    showBanner(bannerFromBundle($("bundle").value));
    const order = patient.order;
    $(`procedure-${order.procedure}`).checked = true;
    $("levels").value = order.levels.join(", ");
    $("planned").value = order.planned;
    syncChips();
    status(`${patient.title}: order prefilled (${order.procedure} ${order.levels.join(", ")}). Change it, then select or sign.`);
  }

  // ------------------------------------------------------------------ order

  function levelTokens() {
    return $("levels")
      .value.split(/[\s,;]+/)
      .map((t) => t.trim().toUpperCase())
      .filter(Boolean);
  }

  function syncChips() {
    const chosen = new Set(levelTokens());
    for (const chip of $("level-chips").children) {
      chip.setAttribute("aria-pressed", chosen.has(chip.dataset.level) ? "true" : "false");
    }
  }

  function buildChips() {
    for (const level of CHIP_LEVELS) {
      const chip = el("button", { type: "button", class: "chip", text: level, "data-level": level });
      chip.setAttribute("aria-pressed", "false");
      chip.addEventListener("click", () => {
        const tokens = levelTokens();
        const next = tokens.includes(level) ? tokens.filter((t) => t !== level) : [...tokens, level];
        next.sort((a, b) => config.levels.indexOf(a) - config.levels.indexOf(b));
        $("levels").value = next.join(", ");
        syncChips();
      });
      $("level-chips").append(chip);
    }
  }

  function orderSpec() {
    const procedure = document.querySelector('input[name="procedure"]:checked');
    return {
      procedure: procedure ? procedure.value : "",
      levels: $("levels").value,
      planned: $("planned").value || null,
    };
  }

  // ------------------------------------------------------------------ calling the service

  function clearResults() {
    current = null;
    $("cards").replaceChildren();
    $("cards-empty").hidden = false;
    $("system-actions").hidden = true;
    $("applied").hidden = true;
    $("applied-list").replaceChildren();
    for (const id of ["raw-request", "raw-response", "raw-feedback-request", "raw-feedback-response"]) $(id).textContent = "";
    for (const id of ["raw-request-url", "raw-response-status", "raw-feedback-status"]) $(id).textContent = "";
  }

  async function fire(hook) {
    const text = bundleText();
    if (!text) {
      status("Choose a demo patient or paste a FHIR Bundle first.", "error");
      return;
    }
    let bundle;
    try {
      bundle = JSON.parse(text);
    } catch (error) {
      status(`The Bundle is not valid JSON: ${error.message}`, "error");
      return;
    }
    clearResults();
    status(`Building the ${hook} request…`, "busy");
    const built = await postJson("/playground/api/request", { bundle, order: orderSpec(), hook });
    if (!built.ok) {
      status(`Cannot build the request: ${outcomeMessage(built.body, built.status)}`, "error");
      return;
    }
    const { service, path, request, patient, skipped } = built.body;
    showBanner(patient);
    showJson("raw-request", request);
    $("raw-request-url").textContent = `POST ${path}`;
    status(`Calling ${path}…`, "busy");
    const started = performance.now();
    const answer = await postJson(path, request);
    const elapsed = Math.round(performance.now() - started);
    $("raw-response-status").textContent = `HTTP ${answer.status} in ${elapsed} ms`;
    showJson("raw-response", answer.body !== null ? answer.body : answer.raw);
    if (!answer.ok) {
      status(`The service answered ${outcomeMessage(answer.body, answer.status)}`, "error");
      return;
    }
    current = { service, request, response: answer.body };
    const cards = answer.body.cards || [];
    const skippedNote = Object.keys(skipped || {}).length
      ? ` Not sent (no prefetch key asks for them): ${Object.entries(skipped).map(([k, v]) => `${v} ${k}`).join(", ")}.`
      : "";
    status(`${hook}: ${cards.length} card${cards.length === 1 ? "" : "s"} in ${elapsed} ms.${skippedNote}`, "done");
    renderCards(cards);
    renderSystemActions(answer.body.systemActions || []);
  }

  // ------------------------------------------------------------------ cards, EHR style

  function renderCards(cards) {
    const list = $("cards");
    list.replaceChildren();
    $("cards-empty").hidden = cards.length > 0;
    if (!cards.length) {
      $("cards-empty").textContent = "No cards: nothing to say about this order.";
    }
    const sorted = [...cards].sort((a, b) => INDICATOR_ORDER[a.indicator] - INDICATOR_ORDER[b.indicator]);
    for (const card of sorted) list.append(renderCard(card));
  }

  function ruleOf(card) {
    return card.source && card.source.topic ? card.source.topic.code : "";
  }

  function renderCard(card) {
    const node = el("article", {
      class: `cds-card indicator-${card.indicator}`,
      "data-rule": ruleOf(card),
      "data-uuid": card.uuid || "",
    });
    const head = el(
      "header",
      { class: "card-head" },
      el("span", { class: `badge ${card.indicator}`, text: INDICATOR_LABEL[card.indicator] || card.indicator }),
      el("h3", { class: "summary", text: card.summary }),
    );
    node.append(head);
    if (card.source) {
      const label = card.source.url
        ? el("a", { href: card.source.url, target: "_blank", rel: "noopener noreferrer", text: card.source.label })
        : el("span", { text: card.source.label });
      node.append(el("p", { class: "source" }, "Source: ", label));
    }
    if (card.detail) {
      const details = el("details", { class: "detail", open: card.indicator === "critical" });
      details.append(el("summary", { text: "Details" }));
      const body = el("div", { class: "markdown" });
      body.innerHTML = markdown(card.detail); // escaped first, then a fixed set of tags
      details.append(body);
      node.append(details);
    }
    if (card.suggestions && card.suggestions.length) {
      const box = el("div", { class: "suggestions" });
      for (const suggestion of card.suggestions) {
        const button = el(
          "button",
          { type: "button", class: "suggestion" + (suggestion.isRecommended ? " recommended" : ""), "data-uuid": suggestion.uuid || "" },
          suggestion.label,
        );
        if (suggestion.isRecommended) button.append(el("span", { class: "tag", text: "recommended" }));
        button.addEventListener("click", () => accept(card, suggestion, node, button));
        box.append(button);
      }
      node.append(box);
    }
    if (card.links && card.links.length) {
      const links = el("div", { class: "links" });
      for (const link of card.links) {
        if (link.type === "smart") {
          links.append(el("span", { class: "link smart", title: "SMART app launch is not simulated here", text: `${link.label} (SMART app)` }));
        } else {
          links.append(el("a", { class: "link", href: link.url, target: "_blank", rel: "noopener noreferrer", text: link.label }));
        }
      }
      node.append(links);
    }
    if (card.uuid) {
      const override = el("div", { class: "override" });
      const select = el("select", { class: "override-reason", "aria-label": "Reason for dismissing" });
      select.append(el("option", { value: "", text: "Dismiss reason…" }));
      (card.overrideReasons || []).forEach((reason, index) => {
        select.append(el("option", { value: String(index), text: reason.display || reason.code }));
      });
      const comment = el("input", { type: "text", class: "override-comment", placeholder: "Comment (optional)" });
      const dismiss = el("button", { type: "button", class: "dismiss", text: "Dismiss" });
      dismiss.addEventListener("click", () => {
        const index = select.value === "" ? null : Number(select.value);
        const reason = index === null ? null : card.overrideReasons[index];
        overrideCard(card, reason, comment.value.trim(), node);
      });
      override.append(select, comment, dismiss);
      node.append(override);
    }
    node.append(el("p", { class: "card-status", role: "status" }));
    return node;
  }

  function renderSystemActions(actions) {
    const list = $("system-actions-list");
    list.replaceChildren();
    for (const action of actions) {
      const target = action.resource ? `${action.resource.resourceType}/${action.resource.id || "(new)"}` : action.resourceId;
      list.append(el("li", {}, el("strong", { text: action.type }), ` ${target}: ${action.description}`));
    }
    $("system-actions").hidden = actions.length === 0;
  }

  // ------------------------------------------------------------------ acting on a card

  function applyActions(suggestion) {
    const applied = $("applied-list");
    for (const action of suggestion.actions || []) {
      const resource = action.resource || {};
      const target = action.resource ? `${resource.resourceType}/${resource.id || "(new)"}` : action.resourceId || "";
      applied.append(el("li", {}, el("strong", { text: action.type }), ` ${target}: ${action.description}`));
      // An update of the draft order itself changes the order form, as an EHR would.
      const order = current && current.request.context.draftOrders.entry[0].resource;
      if (action.type === "update" && order && resource.resourceType === "ServiceRequest" && resource.id === order.id) {
        const levels = (resource.bodySite || [])
          .map((site) => {
            const coding = (site.coding || [])[0];
            const words = (coding && coding.display) || site.text || "";
            const match = words.match(/\b([CTLS]\d{1,2})\b/);
            return match ? match[1] : null;
          })
          .filter(Boolean);
        if (levels.length) {
          $("levels").value = levels.join(", ");
          syncChips();
        }
      }
    }
    $("applied").hidden = applied.children.length === 0;
  }

  async function sendFeedback(item, node, doneText) {
    const body = { feedback: [item] };
    showJson("raw-feedback-request", { url: `/cds-services/${current.service}/feedback`, body });
    $("raw-feedback-details").open = true;
    const answer = await postJson(`/cds-services/${current.service}/feedback`, body);
    $("raw-feedback-status").textContent = `HTTP ${answer.status}`;
    showJson("raw-feedback-response", answer.body !== null ? answer.body : answer.raw);
    const line = node.querySelector(".card-status");
    if (answer.ok) {
      const stored = answer.body && answer.body.stored ? "feedback stored" : "feedback already recorded";
      line.textContent = `${doneText} · ${stored}`;
      line.className = "card-status ok";
      node.dataset.feedback = answer.body && answer.body.stored ? "stored" : "duplicate";
    } else {
      line.textContent = `${doneText} · feedback refused: ${outcomeMessage(answer.body, answer.status)}`;
      line.className = "card-status error";
      node.dataset.feedback = "error";
    }
  }

  async function accept(card, suggestion, node, button) {
    applyActions(suggestion);
    button.disabled = true;
    button.classList.add("accepted");
    if (card.selectionBehavior === "at-most-one") {
      node.querySelectorAll("button.suggestion").forEach((b) => (b.disabled = true));
    }
    node.classList.add("accepted");
    if (!card.uuid || !suggestion.uuid) {
      node.querySelector(".card-status").textContent = `Accepted "${suggestion.label}" (no uuid: no feedback sent)`;
      return;
    }
    await sendFeedback(
      { card: card.uuid, outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }], outcomeTimestamp: nowTimestamp() },
      node,
      `Accepted "${suggestion.label}"`,
    );
  }

  async function overrideCard(card, reason, comment, node) {
    const item = { card: card.uuid, outcome: "overridden", outcomeTimestamp: nowTimestamp() };
    if (reason || comment) {
      item.overrideReason = {};
      if (reason) item.overrideReason.reason = { system: reason.system, code: reason.code, display: reason.display };
      if (comment) item.overrideReason.userComment = comment;
    }
    node.classList.add("dismissed");
    node.querySelectorAll("button, select, input").forEach((control) => (control.disabled = true));
    await sendFeedback(item, node, reason ? `Dismissed: ${reason.display}` : "Dismissed");
  }

  // ------------------------------------------------------------------ wiring

  function init() {
    buildChips();
    const planned = new Date(config.today);
    planned.setDate(planned.getDate() + 14);
    $("planned").value = planned.toISOString().slice(0, 10);
    syncChips();
    $("levels").addEventListener("input", syncChips);
    $("patient-select").addEventListener("change", (event) => choosePatient(event.target.value));
    $("bundle").addEventListener("change", () => showBanner(bannerFromBundle(bundleText())));
    $("bundle-file").addEventListener("change", async (event) => {
      const file = event.target.files[0];
      if (!file) return;
      $("bundle").value = await file.text();
      $("patient-select").value = "";
      $("patient-story").textContent = `From ${file.name}`;
      showBanner(bannerFromBundle(bundleText()));
    });
    $("fire-select").addEventListener("click", () => fire("order-select"));
    $("fire-sign").addEventListener("click", () => fire("order-sign"));
    document.body.dataset.ready = "true";
  }

  init();
})();
