/* hotpatch-audit report: the interactive layer of audit.html (inlined by render.py; never in the PDF).
 *
 * Progressive enhancement: without this script the page is complete, only static. With it:
 *   - table[data-sortable]: a button in every header cell sorts the rows (numbers as numbers, empty last)
 *     and sets aria-sort;
 *   - table[data-filterable]: a filter box (and a select per name in data-filter-attrs, matched against
 *     the rows' data-<name>) hides rows that do not match; "N of M rows" says how many are shown;
 *   - #report-search filters every filterable table at once (machine name, resource id, owner, code...);
 *   - #m-<12 hex> in the address (a machine's deep link) shows only that machine's rows in the tables
 *     marked data-machine-rows, until "Show all machines" or Escape;
 *   - "/" focuses the search box, Escape clears it (or the machine filter).
 * Everything in the tables is untrusted text from Azure: it is read and written with textContent and
 * attributes only, never parsed as HTML. Translated strings come from data-msg-* of #report-ui.
 */
(function () {
  "use strict";

  var ui = document.getElementById("report-ui");
  if (!ui || !window.Map || !document.querySelectorAll) {
    return;
  }
  var FOCUS = /^#(m-[0-9a-f]{12})$/;
  var search = document.getElementById("report-search");
  var searchCount = document.getElementById("report-search-count");
  var banner = document.getElementById("focus-banner");
  var bannerText = banner ? banner.querySelector(".focus-text") : null;
  var bannerClear = document.getElementById("focus-clear");
  var states = new Map();
  var texts = new WeakMap();
  var query = "";
  var focus = null;
  var collator = new Intl.Collator(document.documentElement.lang || undefined, { numeric: true, sensitivity: "base" });

  function msg(name, values) {
    var template = ui.getAttribute("data-msg-" + name) || "";
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return values && Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function rowsOf(table) {
    var rows = [];
    for (var b = 0; b < table.tBodies.length; b++) {
      var body = table.tBodies[b].rows;
      for (var r = 0; r < body.length; r++) {
        if (!body[r].hasAttribute("data-no-filter")) {
          rows.push(body[r]);
        }
      }
    }
    return rows;
  }

  /* Resource ids are not shown but searched: the machine index rows carry them (data-machine-id), the
     other rows only their machine's anchor (data-machine), which keeps the page small. */
  var machineIds = new Map();

  function rowText(tr) {
    var text = texts.get(tr);
    if (text === undefined) {
      var id = tr.getAttribute("data-machine-id") || machineIds.get(tr.getAttribute("data-machine")) || "";
      text = (tr.textContent + " " + id).replace(/\s+/g, " ").toLowerCase();
      texts.set(tr, text);
    }
    return text;
  }

  /* ---- sorting ------------------------------------------------------------------------------------ */

  var NUMBER = /^[^\d+-]{0,3}([-+]?\d[\d,\u00a0\u202f]*(?:\.\d+)?)\s*(?:%|[a-z]{1,4})?$/i;

  function sortKey(cell) {
    if (!cell) {
      return { empty: true, num: null, text: "" };
    }
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    var text = raw.replace(/\s+/g, " ").trim();
    var match = NUMBER.exec(text);
    var num = match ? parseFloat(match[1].replace(/[,\u00a0\u202f]/g, "")) : null;
    return { empty: text === "" || text === "\u2014" || text === "n/a", num: isNaN(num) ? null : num, text: text };
  }

  function compareKeys(a, b) {
    if (a.num !== null && b.num !== null) {
      return a.num - b.num;
    }
    if (a.num !== null || b.num !== null) {
      return a.num !== null ? -1 : 1;
    }
    return collator.compare(a.text, b.text);
  }

  function sortTable(table, th, column) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    for (var h = 0; h < headers.length; h++) {
      if (headers[h].hasAttribute("aria-sort")) {
        headers[h].setAttribute("aria-sort", "none");
      }
    }
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    for (var b = 0; b < table.tBodies.length; b++) {
      var body = table.tBodies[b];
      var keyed = [];
      for (var r = 0; r < body.rows.length; r++) {
        keyed.push({ row: body.rows[r], key: sortKey(body.rows[r].cells[column]), index: r });
      }
      keyed.sort(function (x, y) {
        if (x.key.empty !== y.key.empty) {
          return x.key.empty ? 1 : -1; /* empty cells last in both directions */
        }
        var c = x.key.empty ? 0 : compareKeys(x.key, y.key);
        return (ascending ? c : -c) || x.index - y.index;
      });
      for (var k = 0; k < keyed.length; k++) {
        body.appendChild(keyed[k].row);
      }
    }
  }

  function makeSortable(table) {
    if (!table.tHead || !table.tHead.rows.length) {
      return;
    }
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) {
      (function (th, column) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "sort-button";
        button.title = msg("sort");
        while (th.firstChild) {
          button.appendChild(th.firstChild);
        }
        th.appendChild(button);
        th.setAttribute("aria-sort", "none");
        button.addEventListener("click", function () {
          sortTable(table, th, column);
        });
      })(headers[i], i);
    }
  }

  /* ---- filtering ---------------------------------------------------------------------------------- */

  function makeFilterable(table) {
    var state = { text: "", attrs: {}, counter: null };
    var tools = document.createElement("div");
    tools.className = "table-tools";
    var label = document.createElement("label");
    var input = document.createElement("input");
    input.type = "search";
    input.className = "table-filter";
    input.autocomplete = "off";
    if (table.id) {
      input.setAttribute("aria-controls", table.id);
    }
    label.appendChild(document.createTextNode(msg("filter") + " "));
    label.appendChild(input);
    tools.appendChild(label);
    input.addEventListener("input", function () {
      state.text = input.value.trim().toLowerCase();
      applyTable(table);
      updateSearchCount();
    });
    var names = (table.getAttribute("data-filter-attrs") || "").split(/\s+/).filter(Boolean);
    names.forEach(function (name) {
      var values = [];
      rowsOf(table).forEach(function (tr) {
        var v = tr.getAttribute("data-" + name);
        if (v && values.indexOf(v) < 0) {
          values.push(v);
        }
      });
      if (values.length < 2) {
        return;
      }
      var selectLabel = document.createElement("label");
      var select = document.createElement("select");
      select.className = "table-select";
      select.setAttribute("data-attr", name);
      var any = document.createElement("option");
      any.value = "";
      any.textContent = msg("any");
      select.appendChild(any);
      values.forEach(function (v) {
        var option = document.createElement("option");
        option.value = v;
        option.textContent = v;
        select.appendChild(option);
      });
      selectLabel.appendChild(document.createTextNode(msg("attr-" + name) + " "));
      selectLabel.appendChild(select);
      tools.appendChild(selectLabel);
      select.addEventListener("change", function () {
        state.attrs[name] = select.value;
        applyTable(table);
        updateSearchCount();
      });
    });
    var counter = document.createElement("output");
    counter.className = "row-count";
    counter.setAttribute("aria-live", "polite");
    tools.appendChild(counter);
    state.counter = counter;
    table.parentNode.insertBefore(tools, table);
    states.set(table, state);
  }

  function applyTable(table) {
    var state = states.get(table);
    var machineRows = table.hasAttribute("data-machine-rows");
    var rows = rowsOf(table);
    var shown = 0;
    rows.forEach(function (tr) {
      var ok = true;
      if (state.text && rowText(tr).indexOf(state.text) < 0) {
        ok = false;
      }
      for (var name in state.attrs) {
        if (state.attrs[name] && tr.getAttribute("data-" + name) !== state.attrs[name]) {
          ok = false;
        }
      }
      if (ok && query && rowText(tr).indexOf(query) < 0) {
        ok = false;
      }
      var mine = machineRows && focus !== null && tr.getAttribute("data-machine") === focus;
      if (ok && machineRows && focus !== null && !mine) {
        ok = false;
      }
      if (tr.classList.contains("is-focus") !== mine) {
        tr.classList.toggle("is-focus", mine);
      }
      if (tr.hidden === ok) {
        tr.hidden = !ok; /* write only changes: big reports have tens of thousands of rows */
      }
      if (ok) {
        shown++;
      }
    });
    state.shown = shown;
    state.total = rows.length;
    state.counter.textContent =
      shown === rows.length ? msg("rows-all", { total: rows.length }) : msg("rows-shown", { shown: shown, total: rows.length });
    table.classList.toggle("no-rows-shown", shown === 0 && rows.length > 0);
  }

  function applyAll() {
    states.forEach(function (state, table) {
      applyTable(table);
    });
    updateSearchCount();
    if (search) {
      search.setAttribute("data-applied", query); /* what the tables show now (the input is debounced) */
    }
  }

  function updateSearchCount() {
    if (!searchCount) {
      return;
    }
    if (!query) {
      searchCount.textContent = "";
      return;
    }
    var shown = 0;
    var tables = 0;
    states.forEach(function (state) {
      shown += state.shown;
      if (state.shown) {
        tables++;
      }
    });
    searchCount.textContent = msg("search-result", { rows: shown, tables: tables });
  }

  /* ---- machine deep links ------------------------------------------------------------------------- */

  function machineName(id) {
    var name = document.querySelector('tr[data-machine="' + id + '"] .machine-name');
    return name ? name.textContent : id;
  }

  function applyHash(scroll) {
    var match = FOCUS.exec(window.location.hash);
    if (!match) {
      return; /* other anchors (sections) keep the machine filter */
    }
    focus = match[1];
    if (banner && bannerText) {
      /* the audit sections list each finding once (the change and owner lists repeat some) */
      var rows = document.querySelectorAll('section.audit-section table[data-machine-rows] tr[data-machine="' + focus + '"]').length;
      bannerText.textContent = msg("focus", { machine: machineName(focus), rows: rows });
      banner.hidden = false;
    }
    setBarHeight();
    document.documentElement.classList.add("has-focus");
    applyAll();
    if (scroll) {
      scrollToFocus();
    }
  }

  function scrollToFocus() {
    if (focus !== null) {
      /* the machine index section: its heading, the machine's row, then the audit sections below it */
      var row = document.getElementById(focus);
      var target = row ? row.closest("section") || row : document.querySelector('tr[data-machine="' + focus + '"]');
      if (target) {
        target.scrollIntoView({ block: "start" });
      }
    }
  }

  function clearFocus() {
    if (focus === null) {
      return;
    }
    focus = null;
    if (banner) {
      banner.hidden = true;
    }
    setBarHeight();
    document.documentElement.classList.remove("has-focus");
    if (FOCUS.test(window.location.hash)) {
      try {
        window.history.replaceState(null, "", window.location.pathname + window.location.search);
      } catch (e) {
        window.location.hash = "";
      }
    }
    applyAll();
  }

  /* ---- wiring ------------------------------------------------------------------------------------- */

  function setBarHeight() {
    document.documentElement.style.setProperty("--bar-h", ui.offsetHeight + "px");
  }

  function init() {
    ui.hidden = false;
    document.documentElement.classList.add("js");
    var indexed = document.querySelectorAll("tr[data-machine][data-machine-id]");
    for (var n = 0; n < indexed.length; n++) {
      machineIds.set(indexed[n].getAttribute("data-machine"), indexed[n].getAttribute("data-machine-id"));
    }
    var sortable = document.querySelectorAll("table[data-sortable]");
    for (var i = 0; i < sortable.length; i++) {
      makeSortable(sortable[i]);
    }
    var filterable = document.querySelectorAll("table[data-filterable]");
    for (var j = 0; j < filterable.length; j++) {
      makeFilterable(filterable[j]);
    }
    if (search) {
      var timer = null;
      search.addEventListener("input", function () {
        window.clearTimeout(timer);
        timer = window.setTimeout(function () {
          query = search.value.replace(/\s+/g, " ").trim().toLowerCase();
          applyAll();
        }, 80);
      });
    }
    if (bannerClear) {
      bannerClear.addEventListener("click", clearFocus);
    }
    document.addEventListener("keydown", function (event) {
      var tag = event.target && event.target.tagName;
      var typing = tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA";
      if (event.key === "/" && !typing && search && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        search.focus();
      } else if (event.key === "Escape") {
        if (event.target === search && search.value) {
          search.value = "";
          query = "";
          applyAll();
        } else {
          clearFocus();
        }
      }
    });
    window.addEventListener("hashchange", function () {
      applyHash(true);
    });
    window.addEventListener("resize", setBarHeight);
    if (window.ResizeObserver) {
      new ResizeObserver(setBarHeight).observe(ui);
    }
    setBarHeight();
    applyAll();
    applyHash(false);
    /* after the browser's own jump to the fragment, which happens once the page has loaded */
    if (document.readyState === "complete") {
      scrollToFocus();
    } else {
      window.addEventListener("load", function () {
        window.requestAnimationFrame(scrollToFocus);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
