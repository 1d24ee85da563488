// Who one may be in the web chat: the catalog's people, with what the catalog lets each of them do, so the
// page can say it next to the picker (the run still decides every permission itself).
import { isOwner, reposInScope, type Catalog } from '../../domain/catalog-schema';

export interface WebPerson {
  handle: string;
  /** The catalog's name, which in the demo carries the role ("Pam (product manager)"). */
  name: string;
  groups: string[];
  /** Repositories whose changes this person reviews (directly or through a group). */
  owns: string[];
  /** Repositories this person may target in a change request. */
  mayTarget: string[];
}

export function peopleOf(catalog: Catalog): WebPerson[] {
  return Object.entries(catalog.people).map(([handle, person]) => ({
    handle,
    name: person.name ?? handle,
    groups: Object.entries(catalog.groups)
      .filter(([, members]) => members.includes(handle))
      .map(([group]) => group),
    owns: catalog.repositories.filter((repo) => isOwner(catalog, handle, repo.id)).map((repo) => repo.id),
    mayTarget: reposInScope(catalog, handle),
  }));
}
