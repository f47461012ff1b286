-- sales/daily_order_metrics: per day and currency, the orders, the revenue (orders neither
-- cancelled nor returned), the average order value of those orders and the distinct customers.
-- Exact numeric sums, computed where the orders are; {window_start} and {window_end} bound the
-- run's days (one statement for a range of any length).
SELECT
    order_date AS metric_date,
    currency,
    count(*) AS order_count,
    count(*) FILTER (WHERE status NOT IN ('cancelled', 'returned')) AS revenue_order_count,
    count(*) FILTER (WHERE status IN ('cancelled', 'returned')) AS cancelled_or_returned_count,
    coalesce(sum(amount) FILTER (WHERE status NOT IN ('cancelled', 'returned')), 0) AS revenue,
    round(
        sum(amount) FILTER (WHERE status NOT IN ('cancelled', 'returned'))
        / nullif(count(*) FILTER (WHERE status NOT IN ('cancelled', 'returned')), 0),
        2
    ) AS average_order_value,
    count(DISTINCT customer_id) AS distinct_customers
FROM {orders}
WHERE order_date >= {window_start} AND order_date < {window_end}
GROUP BY order_date, currency
