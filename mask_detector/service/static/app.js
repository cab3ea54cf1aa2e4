// The service's pages: each reads the API and fills in what it shows. Text from the API (camera names, labels)
// goes in as text, never as markup.
"use strict";

const page = document.body.dataset.page;

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (response.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("log in first");
  }
  if (!response.ok) throw new Error(url + ": " + response.status);
  return response.json();
}

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text !== undefined && text !== null) made.textContent = text;
  if (className) made.className = className;
  return made;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
}

function percent(value) {
  return value === null || value === undefined ? "no one judged yet" : value.toFixed(1) + " %";
}

const LABEL_TEXT = { mask: "mask", no_mask: "no mask", incorrect: "mask worn wrong", not_judged: "not judged" };

function labelText(label) {
  return LABEL_TEXT[label] || label || "";
}

// A camera's figures into the elements marked data-field under root.
function fillCamera(root, camera) {
  const state = camera.state;
  const fields = {
    stream: state.stream,
    in_view: state.people_in_view + " (" + state.people_without_mask_in_view + " flagged)",
    people_today: String(camera.today.people),
    compliance_today: percent(camera.today.compliance_percent),
    last_alert: camera.last_alert ? when(camera.last_alert.at) + ", " + labelText(camera.last_alert.label) : "none",
    alerts: String(state.alerts),
  };
  for (const [name, value] of Object.entries(fields)) {
    for (const shown of root.querySelectorAll('[data-field="' + name + '"]')) {
      shown.textContent = value;
      if (name === "stream") shown.className = "stream " + value;
    }
  }
}

function every(seconds, task) {
  const run = () => task().catch(() => {}).finally(() => setTimeout(run, seconds * 1000));
  run();
}

// A picture that loads again and again: latest.jpg, a couple of times a second, for a page of many cameras
// (a browser opens only a few connections to one server, so no page holds one MJPEG stream per camera).
function refreshing(image, url, seconds) {
  const next = () => setTimeout(() => { image.src = url + "?t=" + Date.now(); }, seconds * 1000);
  image.addEventListener("load", next);
  image.addEventListener("error", () => setTimeout(next, 2000));
  image.src = url + "?t=" + Date.now();
}

function playClip(video, caption, event) {
  video.hidden = false;
  video.src = event.clip_url;
  video.play().catch(() => {});
  if (caption) {
    caption.hidden = false;
    caption.textContent = "Clip of person " + event.track_id + ", " + when(event.at) + ". ";
    const back = element("a", "Back to the live picture");
    back.href = "#";
    back.addEventListener("click", (click) => {
      click.preventDefault();
      video.pause();
      video.hidden = true;
      caption.hidden = true;
    });
    caption.append(back);
  }
}

function overview() {
  for (const card of document.querySelectorAll(".card")) {
    const image = card.querySelector("img.live");
    if (image) {
      const url = image.getAttribute("src").replace("live.mjpg", "latest.jpg");
      image.removeAttribute("src");
      refreshing(image, url, 0.4);
    }
  }
  every(2, async () => {
    for (const camera of await getJSON("/api/cameras")) {
      const card = document.querySelector('.card[data-camera="' + CSS.escape(camera.id) + '"]');
      if (card) fillCamera(card, camera);
    }
  });
}

function cameraPage() {
  const section = document.querySelector(".camera");
  const id = section.dataset.camera;
  const video = document.getElementById("clip");
  const caption = document.getElementById("clip-caption");
  every(2, async () => fillCamera(document.body, await getJSON("/api/cameras/" + encodeURIComponent(id))));
  let newest = null;
  every(5, async () => {
    const found = await getJSON("/api/events?kind=alert&limit=50&camera=" + encodeURIComponent(id));
    const top = found.events.length ? found.events[0].id : 0;
    if (top === newest) return;  // nothing new: the list, its pictures and a clip playing stay as they are
    newest = top;
    const list = document.getElementById("timeline");
    const items = found.events.map((event) => {
      const item = element("li");
      item.dataset.event = event.id;
      if (event.snapshot_url) {
        const image = element("img");
        image.alt = "snapshot of person " + event.track_id;
        image.src = event.snapshot_url;
        item.append(image);
      }
      const what = element("div", null, "what");
      what.append(element("span", labelText(event.label), "label-" + event.label), element("br"),
                  element("span", when(event.at) + " · person " + event.track_id, "caption"));
      item.append(what);
      if (event.clip_url && video) {
        const play = element("button", "Play clip");
        play.type = "button";
        play.addEventListener("click", () => playClip(video, caption, event));
        item.append(play);
      }
      return item;
    });
    if (!items.length) items.push(element("li", "No alert yet.", "caption"));
    list.replaceChildren(...items);
  });
  let hours = 24;
  let chart = null;
  const box = document.getElementById("chart");
  async function draw() {
    const [stats] = await getJSON("/api/stats?camera=" + encodeURIComponent(id) + "&hours=" + hours);
    const times = stats.hours.map((hour) => hour.hour);
    const compliance = stats.hours.map((hour) => hour.compliance_percent);
    const people = stats.hours.map((hour) => hour.people);
    const judged = people.reduce((sum, n) => sum + n, 0);
    document.getElementById("chart-note").textContent = judged
      ? judged + " people in the last " + (hours === 24 ? "day" : "week") + "; bars: compliance, line: people"
      : "No one came by in the last " + (hours === 24 ? "day" : "week") + ".";
    const options = {
      width: Math.max(box.clientWidth - 2, 240), height: 220,
      scales: { x: { time: true }, percent: { range: [0, 100] }, people: { range: (u, low, high) => [0, Math.max(high, 1)] } },
      axes: [{}, { scale: "percent", label: "% with mask" }, { scale: "people", side: 1, grid: { show: false }, label: "people" }],
      series: [
        {},
        { label: "compliance %", scale: "percent", stroke: "#1f7a3a", fill: "rgba(31,122,58,0.35)",
          paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } },
        { label: "people", scale: "people", stroke: "#0b57d0", width: 1.5, points: { show: false } },
      ],
    };
    if (chart) chart.destroy();
    chart = new uPlot(options, [times, compliance, people], box);
  }
  for (const button of document.querySelectorAll(".range button")) {
    button.addEventListener("click", () => {
      hours = Number(button.dataset.hours);
      for (const other of document.querySelectorAll(".range button")) other.classList.toggle("chosen", other === button);
      draw().catch(() => {});
    });
  }
  every(60, draw);
  window.addEventListener("resize", () => chart && chart.setSize({ width: Math.max(box.clientWidth - 2, 240), height: 220 }));
}

function eventsPage() {
  const form = document.getElementById("filters");
  const body = document.querySelector("#events tbody");
  const video = document.getElementById("clip");
  const size = 25;
  let offset = 0;
  let lastShown = "";
  const query = new URLSearchParams(location.search);
  for (const name of ["camera", "kind", "label"]) {
    if (query.get(name)) form.elements[name].value = query.get(name);
  }
  async function show() {
    const asked = new URLSearchParams({ limit: size, offset: offset });
    for (const name of ["camera", "kind", "label"]) {
      if (form.elements[name].value) asked.set(name, form.elements[name].value);
    }
    for (const name of ["after", "before"]) {
      // The browser's own time zone: the API takes Unix seconds.
      if (form.elements[name].value) asked.set(name, new Date(form.elements[name].value).getTime() / 1000);
    }
    const found = await getJSON("/api/events?" + asked);
    const shown = asked + " " + found.total + " " + (found.events.length ? found.events[0].id : 0);
    if (shown === lastShown) return;  // the same page as before: nothing to draw again
    lastShown = shown;
    body.replaceChildren(...found.events.map((event) => {
      const row = element("tr");
      row.dataset.event = event.id;
      const label = element("td", labelText(event.label), "label-" + event.label);
      const snapshot = element("td");
      if (event.snapshot_url) {
        const link = element("a");
        link.href = event.snapshot_url;
        const image = element("img");
        image.alt = "snapshot";
        image.loading = "lazy";
        image.src = event.snapshot_url;
        link.append(image);
        snapshot.append(link);
      }
      const clip = element("td");
      if (event.clip_url) {
        const play = element("button", "Play");
        play.type = "button";
        play.addEventListener("click", () => playClip(video, null, event));
        clip.append(play);
      }
      row.append(element("td", when(event.at)), element("td", event.camera), element("td", event.event), label,
                 element("td", String(event.track_id)), snapshot, clip);
      return row;
    }));
    const last = Math.min(offset + size, found.total);
    document.getElementById("summary").textContent = found.total
      ? (offset + 1) + "-" + last + " of " + found.total + " events, newest first"
      : "No event matches.";
    document.getElementById("newer").disabled = offset === 0;
    document.getElementById("older").disabled = last >= found.total;
  }
  form.addEventListener("submit", (submit) => { submit.preventDefault(); offset = 0; show().catch(() => {}); });
  document.getElementById("newer").addEventListener("click", () => { offset = Math.max(0, offset - size); show(); });
  document.getElementById("older").addEventListener("click", () => { offset += size; show(); });
  every(10, show);
}

if (page === "overview") overview();
else if (page === "camera") cameraPage();
else if (page === "events") eventsPage();
