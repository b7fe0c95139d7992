{#- Remaining gaps filled as each column declares: the median (numbers), the most frequent
    value (ties to the alphabetically first, so runs are reproducible), a constant, or not
    at all. A column with no value at all has neither median nor mode: it takes its declared
    fallback, so it is constant, and the clustering step leaves it out. Ordered categories
    also get their rank (`<name>_level`). -#}
{%- set columns = attribute_columns() -%}

with

customers as (

    select * from {{ ref('int_customers_deduplicated') }}

),

{{ imputation_ctes(columns, 'customers') }}
imputed as (

    select
        customers.customer_id,
        {%- for column in columns %}
        {{ imputed_value(column, 'customers') }} as {{ column.name }},
        {%- endfor %}
        {%- for column in columns if column.impute != 'none' %}
        customers.{{ column.name }} is null as is_{{ column.name }}_imputed,
        {%- endfor %}
        customers.records_merged,
        customers.source_row_number

    from customers
    cross join medians

),

ranked_levels as (

    select
        *
        {{- level_ranks(columns) }}

    from imputed

)

select * from ranked_levels
