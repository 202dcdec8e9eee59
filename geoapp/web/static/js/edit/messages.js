/* What to tell an editor about a change the server refused, in the page's language where we can. */
import { fill } from "../lib/format.js";

export function failureText(text, err) {
  if (err.status === 409) return text.conflict;
  if (err.status === 401) return text.signInAgain;
  if (err.status === 403) return text.notAllowed;
  return fill(text.saveFailed, { message: err.status ? err.message : text.unreachable });
}
