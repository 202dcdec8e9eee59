/*
 * The filter bar (templates/progress.html): a select per filter field of the layer, the date range,
 * free text, "only overdue" and "only what the map shows". A change asks for the table's first page
 * again; text waits until typing pauses. The form is never submitted: the page stays where it is.
 */

const TYPING_MS = 300;

/** ``onChange()`` after a filter changed; ``onView(ticked)`` when "only what the map shows" is (un)ticked. */
export function filterBar(view, form, { onChange, onView }) {
  const { query } = view;
  let timer = null;
  const changed = () => {
    clearTimeout(timer);
    query.read();
    query.state.offset = 0;
    onChange();
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    changed();
  });
  form.addEventListener("change", (e) => {
    if (e.target.name === "in_view") {
      query.read();
      query.state.offset = 0;
      onView(e.target.checked);
    } else if (e.target.name !== "q") changed();
  });
  form.addEventListener("input", (e) => {
    if (e.target.name !== "q") return;
    clearTimeout(timer);
    timer = setTimeout(changed, TYPING_MS);
  });
  // the search box's clear button, and Enter, answer at once
  form.q.addEventListener("search", changed);
}
