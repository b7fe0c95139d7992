{#- One row per customer with at least one usable order line: the behaviour columns the
    declaration's `orders:` section gives (recency, frequency, monetary value, tenure,
    average order value, return rate, share of spend per declared category and channel).
    Returns are netted against purchases: monetary is the net value, never below 0 (a
    return of a purchase made before the file's period cannot make a customer owe). Sums of
    money are exact (`exact_sum`): the same lines give the same numbers, bit for bit. -#}
{%- set orders = order_roles() -%}
{%- set behaviour = declaration().behaviour or [] -%}
{%- set names = behaviour | map(attribute='name') | list -%}

with

order_lines as (

    select * from {{ ref('int_orders_validated') }}
    where quarantine_reason is null

),

per_customer as (

    select
        customer_id,
        max(as_of) as as_of,
        count(distinct case when not is_return then order_id end) as orders_placed,
        count(case when is_return then 1 end) as return_lines,
        {{ exact_sum('case when not is_return then line_value else 0 end') }} as gross_value,
        {{ exact_sum('case when is_return then abs(line_value) else 0 end') }} as returned_value,
        max(case when not is_return then order_date end) as last_purchase,
        min(case when not is_return then order_date end) as first_purchase,
        max(order_date) as last_line,
        min(order_date) as first_line,
        count(distinct product) as distinct_products
        {%- for plural, kind in [('categories', 'category'), ('channels', 'channel')] %}
        {%- for level in (orders[plural] or []) %},
        {{ exact_sum('case when not is_return and ' ~ kind ~ ' = ' ~ sql_string(level.key) ~ ' then line_value else 0 end') }}
            as {{ level.feature }}_value
        {%- endfor %}
        {%- endfor %}

    from order_lines
    group by customer_id

),

{%- if 'main_country' in names %}

country_ranks as (

    select
        customer_id,
        country,
        row_number() over (partition by customer_id order by count(*) desc, country) as country_rank

    from order_lines
    where country is not null
    group by customer_id, country

),
{%- endif %}

behaviour as (

    select
        per_customer.customer_id,
        cast({{ dbt.datediff('coalesce(per_customer.last_purchase, per_customer.last_line)', 'per_customer.as_of', 'day') }} as bigint)
            as recency_days,
        cast(per_customer.orders_placed as bigint) as frequency,
        cast(greatest(per_customer.gross_value - per_customer.returned_value, 0) as double) as monetary,
        cast({{ dbt.datediff('coalesce(per_customer.first_purchase, per_customer.first_line)', 'per_customer.as_of', 'day') }} as bigint)
            as tenure_days,
        cast(coalesce(
            greatest(per_customer.gross_value - per_customer.returned_value, 0) / nullif(per_customer.orders_placed, 0), 0
        ) as double) as average_order_value,
        cast(case
            when per_customer.gross_value > 0 then least(per_customer.returned_value / per_customer.gross_value, 1)
            when per_customer.returned_value > 0 then 1
            else 0
        end as double) as return_rate,
        cast(per_customer.distinct_products as bigint) as distinct_products,
        {%- for kind in ['categories', 'channels'] %}
        {%- for level in (orders[kind] or []) %}
        cast(coalesce(least(greatest(per_customer.{{ level.feature }}_value / nullif(per_customer.gross_value, 0), 0), 1), 0)
            as double) as {{ level.feature }},
        {%- endfor %}
        {%- endfor %}
        {%- if 'main_country' in names %}
        country_ranks.country as main_country,
        {%- endif %}
        cast(per_customer.orders_placed as bigint) as orders_placed,
        cast(per_customer.return_lines as bigint) as return_lines,
        cast(per_customer.gross_value as double) as gross_value,
        cast(per_customer.returned_value as double) as returned_value

    from per_customer
    {%- if 'main_country' in names %}
    left join country_ranks
        on per_customer.customer_id = country_ranks.customer_id
        and country_ranks.country_rank = 1
    {%- endif %}

)

select * from behaviour
