// Files Gatehouse writes about people (the audit trail: every statement, who ran it,
// from where) are readable by Gatehouse's own OS user only: created 0600 in a 0700
// directory, whatever the umask, and put right when an older run left them wider.
import { chmodSync, closeSync, fstatSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates the directory (and parents) 0700; an existing one is narrowed to 0700. A shared
 * directory (sticky bit, such as /tmp) is refused, never narrowed: the files must be given a
 * directory of their own, and narrowing /tmp would break every other program on the machine.
 */
export function privateDir(dir: string): void {
  let existing: number | undefined;
  try {
    existing = statSync(dir).mode;
  } catch {
    existing = undefined;
  }
  if (existing !== undefined && (existing & 0o1000) !== 0) {
    throw new Error(`${dir} is a shared directory (sticky bit, like /tmp): give Gatehouse's private files a directory of their own inside it`);
  }
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is masked by the umask and ignored for a directory that already exists.
  chmodSync(dir, PRIVATE_DIR_MODE);
}

/**
 * Opens a file for appending, created 0600 (O_CREAT's mode is masked by the umask, so the
 * mode is set again on the open descriptor: an existing 0644 file from an older run is
 * narrowed before anything more is written to it). Returns the descriptor.
 */
export function openPrivateAppend(path: string): number {
  const fd = openSync(path, 'a', PRIVATE_FILE_MODE);
  try {
    if ((fstatSync(fd).mode & 0o777) !== PRIVATE_FILE_MODE) fchmodSync(fd, PRIVATE_FILE_MODE);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
