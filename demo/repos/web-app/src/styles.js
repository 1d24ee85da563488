// The page's own CSS (badge styles come from ui-kit's badgeCss()).
export const PAGE_CSS = `
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f7f9;color:#1f2933}
.header{background:#111827;color:#fff;padding:20px 32px;display:flex;align-items:center;justify-content:space-between;gap:16px;flex-wrap:wrap}
.header__title{margin:0;font-size:24px;letter-spacing:.5px}
.header__title span{color:#f59e0b}
main{max-width:1040px;margin:0 auto;padding:32px}
.page-title{margin:0 0 20px;font-size:20px;font-weight:600}
.grid{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:20px}
.card{background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:16px;display:flex;flex-direction:column;gap:8px}
.card__media{height:120px;border-radius:8px;display:flex;align-items:center;justify-content:center;font-size:32px;font-weight:700;color:#fff;background:linear-gradient(135deg,hsl(var(--hue,240) 70% 62%),hsl(calc(var(--hue,240) + 50) 75% 55%))}
.card__badges{min-height:22px;display:flex;gap:6px}
.card__name{margin:0;font-size:16px;font-weight:600}
.card__price{margin:0;font-size:18px;font-weight:700;color:#111827}
.card__button{margin-top:auto;border:0;border-radius:8px;padding:10px;background:#111827;color:#fff;font-weight:600;cursor:pointer}
.card__button:hover{background:#374151}
.empty{color:#6b7280}
footer{text-align:center;color:#6b7280;font-size:13px;padding:24px}
`;
