// The three dialogs of the sidebar: a new room, the public room directory, and a direct message
// to someone found by username. Each hands the room it ends in to `opened(room)`.

import * as api from "./api.js";
import { $, el } from "./dom.js";

/** Wires the sidebar's buttons to their dialogs. */
export function setupDialogs(opened) {
  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  }
  newRoom(opened);
  browse(opened);
  directMessage(opened);
}

function failed(form, e) {
  const fields = e.details?.fields;
  form.querySelector(".error").textContent = fields
    ? Object.entries(fields)
        .map(([field, reason]) => `${field}: ${reason}`)
        .join("; ")
    : e.message;
}

function show(dialog, form) {
  form.reset();
  form.querySelector(".error").textContent = "";
  form.querySelector(".results")?.replaceChildren();
  dialog.showModal();
}

/** The user called exactly `name` (usernames are unique case-insensitively), if any. */
async function userByName(name) {
  const { users } = await api.findUsers(name);
  return users.find((u) => u.username.toLowerCase() === name.toLowerCase());
}

function newRoom(opened) {
  const dialog = $("#dialog-room");
  const form = $("#form-room");
  $("#new-room").addEventListener("click", () => show(dialog, form));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    try {
      const names = String(data.get("invite"))
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const members = [];
      for (const name of names) {
        const user = await userByName(name);
        if (!user) throw new Error(`No user is called ${name}.`);
        members.push(user.id);
      }
      const fields = { name: String(data.get("name")).trim(), members };
      const topic = String(data.get("topic")).trim();
      if (topic) fields.topic = topic;
      fields.visibility = data.get("public") ? "public" : "private";
      const room = await api.createRoom(fields);
      dialog.close();
      opened(room);
    } catch (err) {
      failed(form, err);
    }
  });
}

function browse(opened) {
  const dialog = $("#dialog-browse");
  const form = $("#form-browse");
  const list = form.querySelector(".results");
  const search = async () => {
    try {
      const { rooms } = await api.publicRooms(form.q.value.trim());
      list.replaceChildren(
        ...(rooms.length
          ? rooms.map((room) =>
              el(
                "li",
                {},
                el("span", { class: "room-title" }, `# ${room.name}`),
                el("span", { class: "muted" }, ` ${room.member_count} members `),
                el(
                  "button",
                  {
                    type: "button",
                    onclick: async () => {
                      try {
                        await api.joinRoom(room.id);
                        dialog.close();
                        opened(await api.room(room.id));
                      } catch (err) {
                        failed(form, err);
                      }
                    },
                  },
                  `Join ${room.name}`,
                ),
              ),
            )
          : [el("li", { class: "muted" }, "No public room matches.")]),
      );
    } catch (err) {
      failed(form, err);
    }
  };
  let timer;
  form.q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  $("#browse-rooms").addEventListener("click", () => {
    show(dialog, form);
    search();
  });
}

function directMessage(opened) {
  const dialog = $("#dialog-dm");
  const form = $("#form-dm");
  const list = form.querySelector(".results");
  const open = async (user) => {
    try {
      const room = await api.openDirect(user.id);
      dialog.close();
      opened(room);
    } catch (err) {
      failed(form, err);
    }
  };
  let timer;
  form.q.addEventListener("input", () => {
    clearTimeout(timer);
    const q = form.q.value.trim();
    if (!q) return list.replaceChildren();
    timer = setTimeout(async () => {
      try {
        const { users } = await api.findUsers(q);
        list.replaceChildren(
          ...users.map((user) =>
            el(
              "li",
              {},
              el(
                "button",
                { type: "button", class: "link", onclick: () => open(user) },
                `${user.display_name} (@${user.username})`,
              ),
            ),
          ),
        );
      } catch (err) {
        failed(form, err);
      }
    }, 200);
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const user = await userByName(form.q.value.trim());
      if (!user) throw new Error("No user has that username.");
      await open(user);
    } catch (err) {
      failed(form, err);
    }
  });
  $("#new-dm").addEventListener("click", () => show(dialog, form));
}
