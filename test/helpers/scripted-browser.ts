// A person at a browser, scripted: follows redirects with a cookie jar, and on each page of
// oidc-provider's development interactions does what the script says: signs in as `login`,
// approves or denies consent, confirms a device code. It stops at (and, unless told not to,
// opens) the loopback redirect to gatehouse login's listener, like a browser would.

export interface BrowserScript {
  /** The provider login name. */
  login: string;
  /** Deny at the consent page (or the device confirmation page): the provider's abort. */
  deny?: boolean;
  /** Return the loopback redirect URL without opening it (a code intercepted on its way). */
  stopAtLoopback?: string;
}

export interface BrowserOutcome {
  /** The last URL visited (the loopback callback, or the provider's final page). */
  url: string;
  status: number;
  text: string;
  pages: string[];
}

const decode = (s: string) =>
  s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCharCode(Number.parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCharCode(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag);
  return m ? decode(m[1]) : undefined;
}

interface Form {
  action: string;
  fields: Record<string, string>;
  body: string;
}

function forms(html: string): Form[] {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map((m) => {
    const fields: Record<string, string> = {};
    for (const input of m[2].matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(input[0], 'name');
      if (name) fields[name] = attr(input[0], 'value') ?? '';
    }
    return { action: attr(m[1], 'action') ?? '', fields, body: m[2] };
  });
}

export async function scriptedBrowser(startUrl: string, script: BrowserScript): Promise<BrowserOutcome> {
  const jar = new Map<string, string>();
  const pages: string[] = [];
  const visit = async (url: string, form?: Record<string, string>): Promise<{ url: string; status: number; text: string }> => {
    let current = url;
    let body = form ? new URLSearchParams(form).toString() : undefined;
    for (let hops = 0; hops < 20; hops++) {
      if (script.stopAtLoopback && current.startsWith(script.stopAtLoopback)) return { url: current, status: 0, text: '' };
      const res = await fetch(current, {
        method: body === undefined ? 'GET' : 'POST',
        redirect: 'manual',
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
          cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
        },
        body,
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair.indexOf('=');
        const value = pair.slice(eq + 1);
        if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(pair.slice(0, eq));
        else jar.set(pair.slice(0, eq), value);
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).href;
        body = undefined;
        continue;
      }
      return { url: current, status: res.status, text: await res.text() };
    }
    throw new Error('scripted browser: too many redirects');
  };

  let page = await visit(startUrl);
  for (let step = 0; step < 10; step++) {
    pages.push(page.url);
    if (page.status === 0 || !page.url.startsWith(new URL(startUrl).origin)) break; // left the provider (the loopback redirect)
    const all = forms(page.text);
    const login = all.find((f) => f.fields.prompt === 'login');
    const consent = all.find((f) => f.fields.prompt === 'consent');
    const device = all.find((f) => 'user_code' in f.fields && 'xsrf' in f.fields);
    const abort = /href="([^"]*\/abort)"/.exec(page.text)?.[1];
    if (login) {
      page = await visit(new URL(login.action, page.url).href, { ...login.fields, login: script.login, password: 'any' });
    } else if (consent) {
      if (script.deny) {
        if (!abort) throw new Error('scripted browser: no abort link on the consent page');
        page = await visit(new URL(decode(abort), page.url).href);
      } else page = await visit(new URL(consent.action, page.url).href, consent.fields);
    } else if (device) {
      const fields = { ...device.fields, ...(script.deny && 'confirm' in device.fields ? { abort: 'yes' } : {}) };
      page = await visit(new URL(device.action, page.url).href, fields);
    } else break; // a final page (device success or error)
  }
  return { ...page, pages };
}
