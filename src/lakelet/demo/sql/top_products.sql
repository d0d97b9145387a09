-- Products ranked by revenue over the whole period (ties broken by SKU).
SELECT
    CAST(row_number() OVER (ORDER BY revenue DESC, sku) AS INTEGER) AS rank,
    sku,
    product,
    category,
    transactions,
    units,
    revenue
FROM (
    SELECT
        s.sku,
        s.product,
        s.category,
        count(*) AS transactions,
        CAST(sum(s.quantity) AS BIGINT) AS units,
        CAST(sum(s.quantity * CAST(s.unit_price AS DECIMAL(10, 2))) AS DECIMAL(18, 2)) AS revenue
    FROM raw.sales AS s
    GROUP BY ALL
)
ORDER BY rank
