-- Revenue, units and transactions per vending machine per day, with where it stands.
-- The day is the `date` partition of the raw path (raw/sales/date=YYYY-MM-DD/…).
SELECT
    CAST(s.date AS DATE) AS sales_date,
    s.machine_id,
    m.city,
    m.site,
    count(*) AS transactions,
    CAST(sum(s.quantity) AS BIGINT) AS units,
    CAST(sum(s.quantity * CAST(s.unit_price AS DECIMAL(10, 2))) AS DECIMAL(18, 2)) AS revenue,
    min(s.sold_at) AS first_sale,
    max(s.sold_at) AS last_sale
FROM raw.sales AS s
LEFT JOIN raw.machines AS m ON m.machine_id = s.machine_id
GROUP BY ALL
ORDER BY sales_date, s.machine_id
