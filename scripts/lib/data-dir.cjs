// Permissions of `.data`, the state of `npm run dev`: keys, passwords, the
// Temporal database (every tenant's workflow histories) and the PostgreSQL
// cluster. Shell tasks on the same machine run as other users (a leased uid
// when isolated, `nobody` with SHELL_ISOLATION=none under root): nothing in
// here may be readable by them.
'use strict';
const { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

/**
 * Makes `dir` (created if missing) mode 0700, every directory below it 0700
 * and every file 0600, whatever earlier versions left there. Symbolic links
 * are not followed below the top: what they point to is not ours to change.
 * With `traverseGid`, the top gets that group and mode 0710, so a service
 * user of that group (PostgreSQL's `postgres` when dev runs as root) can
 * reach its own directory inside without being able to list or read the rest.
 * Returns the paths whose mode changed.
 */
function secureDataDir(dir, { traverseGid = null } = {}) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const changed = [];
  const set = (path, mode, current) => {
    if ((current & 0o7777) === mode) return;
    try {
      chmodSync(path, mode);
      changed.push(path);
    } catch (err) {
      if (err.code !== 'ENOENT') throw err; // a running server removed it meanwhile
    }
  };
  const top = statSync(dir);
  if (!top.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (traverseGid !== null && top.gid !== traverseGid) chownSync(dir, top.uid, traverseGid);
  set(dir, traverseGid === null ? 0o700 : 0o710, top.mode);

  const walk = (d) => {
    let names;
    try {
      names = readdirSync(d);
    } catch (err) {
      if (err.code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      const path = join(d, name);
      let st;
      try {
        st = lstatSync(path);
      } catch (err) {
        if (err.code === 'ENOENT') continue;
        throw err;
      }
      if (st.isDirectory()) {
        set(path, 0o700, st.mode);
        walk(path);
      } else if (st.isFile()) {
        set(path, 0o600, st.mode);
      }
    }
  };
  walk(dir);
  return changed;
}

module.exports = { secureDataDir };
