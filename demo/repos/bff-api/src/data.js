// The product catalogue. In production this comes from the catalogue service; the demo keeps it in memory.
// Shape of a product: { id: string, name: string, priceCents: integer }.

export const products = [
  { id: 'p-100', name: 'Canvas Tote Bag', priceCents: 1250 },
  { id: 'p-101', name: 'Ceramic Pour-Over Set', priceCents: 3400 },
  { id: 'p-102', name: 'Merino Beanie', priceCents: 2200 },
  { id: 'p-103', name: 'Walnut Desk Organizer', priceCents: 4800 },
  { id: 'p-104', name: 'Linen Apron', priceCents: 2950 },
  { id: 'p-105', name: 'Enamel Camp Mug', priceCents: 1405 },
];
